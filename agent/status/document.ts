/**
 * Assembles the status document (GET /v1/status) from snapshots the composition root takes of its
 * parts; a part that does not exist yet (start-up) is simply absent. Pure.
 */
import type { CurrentDatapathState } from "../../bpf/datapath/reconcile.js";
import type { AgentStatus, EncryptionStatus, EndpointPolicyStatus } from "../../lib/api/agent-status.js";
import type { MeshIdentity } from "../../lib/api/crds.js";
import type { EndpointRecord } from "../endpoints/store.js";
import { clusterIdOf, labelList } from "../identity/labels.js";
import { endpointTable, ipcacheTable, serviceTable } from "./status.js";

export interface StatusSnapshot {
  node: string;
  cluster: { name: string; id: number };
  encryptionMode: "none" | "wireguard" | "ipsec";
  ready: boolean;
  /** informer name → synced */
  caches: Record<string, boolean>;
  datapath: { loaded: boolean; links: number; current: CurrentDatapathState | undefined };
  tunnel: { device: string; ifindex: number | undefined };
  lastReconcile: AgentStatus["health"]["lastReconcile"];
  podCidr: string | undefined;
  nodeIp: string | undefined;
  endpoints: readonly EndpointRecord[];
  /** Every identity the cache holds (all clusters'; only ours are shown). */
  identities: readonly MeshIdentity[];
  encryption: EncryptionStatus | undefined;
  counters: Record<string, number>;
  clustermesh: AgentStatus["clustermesh"] | undefined;
  /** an endpoint's network policy state, by endpoint id (absent before the policy loop runs) */
  policyOf?: (endpoint: string) => EndpointPolicyStatus | undefined;
  invalidPolicies?: NonNullable<AgentStatus["policies"]>["invalid"];
}

/** This cluster's identities, by id. */
export function localIdentities(
  identities: StatusSnapshot["identities"],
  clusterId: number,
): AgentStatus["identities"] {
  return identities
    .filter((identity) => clusterIdOf(Number(identity.metadata.name)) === clusterId)
    .map((identity) => ({
      id: Number(identity.metadata.name),
      labels: labelList(new Map(Object.entries(identity["security-labels"] ?? {}))),
    }))
    .sort((a, b) => a.id - b.id);
}

export function statusDocument(snapshot: StatusSnapshot): AgentStatus {
  const synced = Object.values(snapshot.caches);
  return {
    node: snapshot.node,
    cluster: snapshot.cluster,
    ready: snapshot.ready,
    health: {
      kubernetes: { synced: synced.length > 0 && synced.every(Boolean), caches: snapshot.caches },
      datapath: { loaded: snapshot.datapath.loaded, links: snapshot.datapath.links },
      tunnel: snapshot.tunnel,
      lastReconcile: snapshot.lastReconcile,
    },
    podCidr: snapshot.podCidr,
    nodeIp: snapshot.nodeIp,
    endpoints: endpointTable(snapshot.endpoints).map((endpoint) => {
      const policy = snapshot.policyOf?.(endpoint.id);
      return policy ? { ...endpoint, policy } : endpoint;
    }),
    policies: { invalid: snapshot.invalidPolicies ?? [] },
    services: serviceTable(snapshot.datapath.current),
    identities: localIdentities(snapshot.identities, snapshot.cluster.id),
    ipcache: ipcacheTable(snapshot.datapath.current),
    encryption: snapshot.encryption ?? { mode: snapshot.encryptionMode },
    counters: snapshot.counters,
    clustermesh: snapshot.clustermesh ?? { remoteClusters: [], remoteIdentities: [] },
  };
}
