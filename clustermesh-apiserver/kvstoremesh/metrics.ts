/**
 * KVStoreMesh metrics, read at scrape time from the cached remotes, with Cilium's names and labels
 * (lib/api/metrics.ts KVSTOREMESH_METRICS), on the apiserver's registry.
 */
import { KVSTOREMESH_METRIC_NAMESPACE, KVSTOREMESH_METRICS } from "../../lib/api/metrics.js";
import { canaryName } from "../../lib/kvstore/paths.js";
import type { MetricFamily } from "../metrics.js";
import type { KvStoreMesh } from "./kvstoremesh.js";
import { CACHED_KINDS } from "./layout.js";

/** Cilium's scope label: the cache prefix without "cilium/" ("cache/nodes/v1"). */
const scopeOf = (kind: (typeof CACHED_KINDS)[number]) => canaryName(kind, "cache").replace(/^cilium\//, "");

export function kvstoreMeshMetricFamilies(mesh: KvStoreMesh, sourceCluster: string): MetricFamily[] {
  const source = { source_cluster: sourceCluster };
  const perRemote = (value: (remote: ReturnType<KvStoreMesh["cachedRemotes"]>[number]) => number) => () =>
    mesh
      .cachedRemotes()
      .map((remote) => ({ labels: { ...source, target_cluster: remote.name }, value: value(remote) }));
  const perCache =
    (
      value: (cache: ReturnType<ReturnType<KvStoreMesh["cachedRemotes"]>[number]["cache"]>) => number,
      extra: Record<string, string> = {},
    ) =>
    () =>
      mesh.cachedRemotes().flatMap((remote) =>
        CACHED_KINDS.map((kind) => ({
          labels: { ...source, ...extra, scope: `${scopeOf(kind)}/${remote.name}` },
          value: value(remote.cache(kind)),
        })),
      );
  const family = (
    name: string,
    help: string,
    type: "counter" | "gauge",
    labelNames: string[],
    collect: MetricFamily["collect"],
  ): MetricFamily => ({ namespace: KVSTOREMESH_METRIC_NAMESPACE, name, help, type, labelNames, collect });
  return [
    family(
      KVSTOREMESH_METRICS.remoteClusters,
      "The total number of remote clusters meshed with the local cluster",
      "gauge",
      ["source_cluster"],
      () => [{ labels: source, value: mesh.cachedRemotes().length }],
    ),
    family(
      KVSTOREMESH_METRICS.remoteClusterReadinessStatus,
      "The readiness status of the remote cluster",
      "gauge",
      ["source_cluster", "target_cluster"],
      perRemote((remote) => (remote.ready ? 1 : 0)),
    ),
    family(
      KVSTOREMESH_METRICS.remoteClusterFailures,
      "The total number of failures related to the remote cluster",
      "gauge",
      ["source_cluster", "target_cluster"],
      perRemote((remote) => remote.numFailures),
    ),
    family(
      KVSTOREMESH_METRICS.remoteClusterLastFailureTs,
      "The timestamp of the last failure of the remote cluster",
      "gauge",
      ["source_cluster", "target_cluster"],
      perRemote((remote) => remote.lastFailureTs),
    ),
    family(
      KVSTOREMESH_METRICS.kvstoreSyncQueueSize,
      "Number of elements queued for synchronization in the kvstore",
      "gauge",
      ["source_cluster", "scope"],
      perCache((cache) => cache.pending),
    ),
    family(
      KVSTOREMESH_METRICS.kvstoreSyncErrorsTotal,
      "Number of times synchronization to the kvstore failed",
      "counter",
      ["source_cluster", "scope"],
      perCache((cache) => cache.stats.errors),
    ),
    family(
      KVSTOREMESH_METRICS.kvstoreInitialSyncCompleted,
      "Whether the initial synchronization from/to the kvstore has completed",
      "gauge",
      ["source_cluster", "scope", "action"],
      perCache((cache) => (cache.isSynced ? 1 : 0), { action: "write" }),
    ),
    family(
      KVSTOREMESH_METRICS.remoteClusterCachedEntries,
      "Entries of the remote cluster in the local cache, by kind",
      "gauge",
      ["source_cluster", "target_cluster", "kind"],
      () =>
        mesh.cachedRemotes().flatMap((remote) =>
          CACHED_KINDS.map((kind) => ({
            labels: { ...source, target_cluster: remote.name, kind },
            value: remote.entries(kind),
          })),
        ),
    ),
    family(
      KVSTOREMESH_METRICS.remoteClusterRejectedTotal,
      "Remote entries refused by the validation (never cached), by reason",
      "counter",
      ["source_cluster", "target_cluster", "reason"],
      () =>
        mesh.cachedRemotes().flatMap((remote) =>
          Object.entries(remote.rejected(false)).map(([reason, value]) => ({
            labels: { ...source, target_cluster: remote.name, reason },
            value: value ?? 0,
          })),
        ),
    ),
    family(
      KVSTOREMESH_METRICS.remoteClusterRejectedEntries,
      "Remote keys whose current value is refused, by reason",
      "gauge",
      ["source_cluster", "target_cluster", "reason"],
      () =>
        mesh.cachedRemotes().flatMap((remote) =>
          Object.entries(remote.rejected(true)).map(([reason, value]) => ({
            labels: { ...source, target_cluster: remote.name, reason },
            value: value ?? 0,
          })),
        ),
    ),
  ];
}
