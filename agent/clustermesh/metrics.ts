/**
 * The remote-cluster metrics. Where Cilium's agent has the measure, its name, type, help and labels
 * (v1.18.4: https://github.com/cilium/cilium/blob/v1.18.4/pkg/clustermesh/common/metrics.go,
 * https://github.com/cilium/cilium/blob/v1.18.4/pkg/clustermesh/metrics.go; the per-remote services
 * and endpoints gauges are 1.19's, given 1.18's label set like their siblings). The rest are ours,
 * with the two histograms none of the peers publish: initial sync and remote change → BPF.
 */

import type { RemoteClusterStatus } from "../../lib/api/agent-status.js";
import { AGENT_METRICS } from "../../lib/api/metrics.js";
import type { MetricsRegistry } from "../../lib/metrics/registry.js";
import type { ClusterMeshManager } from "./manager.js";

/** Who measures: Cilium's source_cluster and source_node_name labels. */
export interface MetricsSource {
  cluster: string;
  nodeName: string;
}

/** An etcd list of a large remote takes seconds; a session's first sync up to minutes. */
export const INITIAL_SYNC_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];
/** The datapath trigger coalesces for 20 ms; a map write is sub-millisecond; a backlog is seconds. */
export const CHANGE_TO_DATAPATH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const TARGET = ["source_cluster", "source_node_name", "target_cluster"] as const;
const SOURCE = ["source_cluster", "source_node_name"] as const;

export function registerClusterMeshMetrics(
  metrics: MetricsRegistry,
  manager: ClusterMeshManager,
  source: MetricsSource,
): void {
  const sourceLabels = { source_cluster: source.cluster, source_node_name: source.nodeName };
  const perCluster = (value: (s: RemoteClusterStatus) => number) => () =>
    manager.status().map((s) => ({ labels: { ...sourceLabels, target_cluster: s.name }, value: value(s) }));

  // Cilium's
  metrics.gauge(
    AGENT_METRICS.remoteClusters,
    "The total number of remote clusters meshed with the local cluster",
    SOURCE,
    () => [{ labels: sourceLabels, value: manager.status().length }],
  );
  metrics.gauge(
    AGENT_METRICS.remoteClusterReadinessStatus,
    "The readiness status of the remote cluster",
    TARGET,
    perCluster((s) => (s.ready ? 1 : 0)),
  );
  metrics.gauge(
    AGENT_METRICS.remoteClusterFailures,
    "The total number of failures related to the remote cluster",
    TARGET,
    perCluster((s) => s.numFailures),
  );
  metrics.gauge(
    AGENT_METRICS.remoteClusterLastFailureTs,
    "The timestamp of the last failure of the remote cluster",
    TARGET,
    perCluster((s) => (s.lastFailureAt ? Date.parse(s.lastFailureAt) / 1000 : 0)),
  );
  metrics.gauge(
    AGENT_METRICS.remoteClusterNodes,
    "The total number of nodes in the remote cluster",
    TARGET,
    perCluster((s) => s.numNodes),
  );
  metrics.gauge(
    AGENT_METRICS.globalServices,
    "The total number of global services in the cluster mesh",
    SOURCE,
    () => [{ labels: sourceLabels, value: manager.globalServices() }],
  );
  metrics.gauge(
    AGENT_METRICS.remoteClusterServices,
    "The total number of services in the remote cluster",
    TARGET,
    perCluster((s) => s.numSharedServices),
  );
  metrics.gauge(
    AGENT_METRICS.remoteClusterEndpoints,
    "The total number of endpoints in the remote cluster",
    TARGET,
    perCluster((s) => s.numEndpoints),
  );

  // ours
  const initialSync = metrics.histogram(
    AGENT_METRICS.remoteClusterInitialSyncSeconds,
    "seconds from the start of the session that created a remote's stores until every kind was listed",
    TARGET,
    INITIAL_SYNC_BUCKETS,
  );
  const changeToDatapath = metrics.histogram(
    AGENT_METRICS.remoteClusterChangeToDatapathSeconds,
    "seconds from a remote cluster's change (the oldest not yet programmed) until the BPF maps were written",
    TARGET,
    CHANGE_TO_DATAPATH_BUCKETS,
  );
  manager.measure({
    initialSync: (cluster, seconds) => initialSync({ ...sourceLabels, target_cluster: cluster }, seconds),
    changeToDatapath: (cluster, seconds) =>
      changeToDatapath({ ...sourceLabels, target_cluster: cluster }, seconds),
  });
  metrics.gauge(
    AGENT_METRICS.agentRemoteClusterConnected,
    "1 when the remote cluster's etcd answers",
    TARGET,
    perCluster((s) => (s.connected ? 1 : 0)),
  );
  metrics.gauge(
    AGENT_METRICS.agentRemoteClusterBackendsWithdrawn,
    "1 while the remote's service backends are withdrawn (unreachable longer than the TTL)",
    TARGET,
    perCluster((s) => (s.backendsWithdrawn ? 1 : 0)),
  );
  metrics.gauge(
    AGENT_METRICS.agentRemoteClusterEntries,
    "entries known per remote cluster and kind",
    [...TARGET, "kind"],
    () =>
      manager.status().flatMap((s) =>
        (
          [
            ["nodes", s.numNodes],
            ["services", s.numSharedServices],
            ["identities", s.numIdentities],
            ["endpoints", s.numEndpoints],
          ] as const
        ).map(([kind, value]) => ({ labels: { ...sourceLabels, target_cluster: s.name, kind }, value })),
      ),
  );
  const perReason = (counts: (s: RemoteClusterStatus) => Record<string, number>) => () =>
    manager.status().flatMap((s) =>
      Object.entries(counts(s)).map(([reason, value]) => ({
        labels: { ...sourceLabels, target_cluster: s.name, reason },
        value,
      })),
    );
  metrics.collectedCounter(
    AGENT_METRICS.agentRemoteClusterRejectedTotal,
    "remote entries refused since the agent started (validation or merge), by reason",
    [...TARGET, "reason"],
    perReason((s) => s.rejectedTotal),
  );
  metrics.gauge(
    AGENT_METRICS.agentRemoteClusterRejectedEntries,
    "remote entries (or service backends) refused right now (validation or merge), by reason",
    [...TARGET, "reason"],
    perReason((s) => s.rejectedNow),
  );
  metrics.gauge(
    AGENT_METRICS.agentRemoteClusterIgnoredEntries,
    "legal remote entries (or parts) accepted but not used right now (IPv6, unshared, …), by reason",
    [...TARGET, "reason"],
    perReason((s) => s.ignoredNow),
  );
}
