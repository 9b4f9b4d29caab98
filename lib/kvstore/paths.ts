/**
 * Cilium's etcd key layout (https://github.com/cilium/cilium/blob/main/pkg/kvstore/kvstore.go, https://github.com/cilium/cilium/blob/main/pkg/node/store/store.go,
 * https://github.com/cilium/cilium/blob/main/pkg/ipcache/kvstore.go, https://github.com/cilium/cilium/blob/main/pkg/kvstore/allocator/allocator.go). "WARNING - STABLE API" in Cilium: every
 * string here is what a Cilium agent or clustermesh-apiserver reads and writes.
 */

export const HEARTBEAT_KEY = "cilium/.heartbeat";
export const CLUSTER_CONFIG_PREFIX = "cilium/cluster-config";
export const SYNCED_PREFIX = "cilium/synced";

export const NODES_PREFIX = "cilium/state/nodes/v1";
export const SERVICES_PREFIX = "cilium/state/services/v1";
export const IDENTITIES_PREFIX = "cilium/state/identities/v1";
export const IDENTITY_IDS_PREFIX = "cilium/state/identities/v1/id";
export const IP_IDENTITIES_PREFIX = "cilium/state/ip/v1";
/** Cilium always writes ipcache entries in the literal "default" address space (not the cluster name). */
export const IP_ENTRIES_PREFIX = "cilium/state/ip/v1/default";

/** Joins like Cilium's JoinKey: "/" separators, no empty segments, no trailing "/". */
export function joinKey(...parts: string[]): string {
  return parts
    .join("/")
    .split("/")
    .filter((part) => part.length > 0)
    .join("/");
}

export const keys = {
  node: (cluster: string, node: string) => joinKey(NODES_PREFIX, cluster, node),
  service: (cluster: string, namespace: string, name: string) =>
    joinKey(SERVICES_PREFIX, cluster, namespace, name),
  identity: (id: number) => joinKey(IDENTITY_IDS_PREFIX, String(id)),
  /** `ipOrPrefix` is the IPIdentityPair's PrefixString(): a bare IP for hosts, "ip/len" otherwise. */
  ip: (ipOrPrefix: string) => `${IP_ENTRIES_PREFIX}/${ipOrPrefix}`,
  clusterConfig: (cluster: string) => joinKey(CLUSTER_CONFIG_PREFIX, cluster),
  /** `syncedKey` is the canary name, e.g. "cilium/state/nodes/v1" (see CANARY_NAMES). */
  canary: (cluster: string, syncedKey: string) => joinKey(SYNCED_PREFIX, cluster, syncedKey),
} as const;

/**
 * Canary name per data kind. Identities and ipcache use Cilium's overrides: their store prefixes
 * end in "/id" and "/default" but their canaries are named after the parent prefix.
 */
export const CANARY_NAMES = {
  nodes: NODES_PREFIX,
  services: SERVICES_PREFIX,
  identities: IDENTITIES_PREFIX,
  ipcache: IP_IDENTITIES_PREFIX,
} as const;

export type DataKind = keyof typeof CANARY_NAMES;

/** The prefix a reader watches for a remote cluster's data (with the trailing "/" Cilium adds). */
export function remoteWatchPrefix(kind: DataKind, cluster: string): string {
  switch (kind) {
    case "nodes":
      return `${NODES_PREFIX}/${cluster}/`;
    case "services":
      return `${SERVICES_PREFIX}/${cluster}/`;
    case "identities":
      return `${IDENTITY_IDS_PREFIX}/`;
    case "ipcache":
      return `${IP_ENTRIES_PREFIX}/`;
  }
}
