/**
 * Cilium's etcd key layout (https://github.com/cilium/cilium/blob/main/pkg/kvstore/kvstore.go, https://github.com/cilium/cilium/blob/main/pkg/node/store/store.go,
 * https://github.com/cilium/cilium/blob/main/pkg/ipcache/kvstore.go, https://github.com/cilium/cilium/blob/main/pkg/kvstore/allocator/allocator.go). "WARNING - STABLE API" in Cilium: every
 * string here is what a Cilium agent or clustermesh-apiserver reads and writes.
 */

export const HEARTBEAT_KEY = "cilium/.heartbeat";
export const CLUSTER_CONFIG_PREFIX = "cilium/cluster-config";
export const SYNCED_PREFIX = "cilium/synced";
/** Where a cluster publishes its own data (Cilium's kvstore.StatePrefix). */
export const STATE_PREFIX = "cilium/state";
/** Data of remote clusters that KVStoreMesh caches in its local etcd (Cilium's kvstore.CachePrefix). */
export const CACHE_PREFIX = "cilium/cache";
/**
 * Cilium <= 1.15 agents read this key before the cluster config: present = the config is
 * mandatory (pkg/clustermesh/utils.IsClusterConfigRequired; written by Cilium's etcd-init).
 */
export const HAS_CLUSTER_CONFIG_KEY = "cilium/.has-cluster-config";

export const NODES_PREFIX = "cilium/state/nodes/v1";
export const SERVICES_PREFIX = "cilium/state/services/v1";
export const IDENTITIES_PREFIX = "cilium/state/identities/v1";
export const IDENTITY_IDS_PREFIX = "cilium/state/identities/v1/id";
export const IP_IDENTITIES_PREFIX = "cilium/state/ip/v1";
/** Cilium always writes ipcache entries in the literal "default" address space (not the cluster name). */
export const IP_ENTRIES_PREFIX = "cilium/state/ip/v1/default";
/**
 * MCS-API service exports. Cilium >= 1.17's clustermesh-apiserver always writes this kind's canary
 * (also with MCS-API off) and KVStoreMesh waits for it whenever the cluster config carries
 * serviceExportsEnabled (pkg/clustermesh/mcsapi/serviceexportsync.go, kvstoremesh/remote_cluster.go).
 */
export const SERVICE_EXPORTS_PREFIX = "cilium/state/serviceexports/v1";

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

/**
 * Where a remote cluster's data lives in the etcd a reader connects to: "state" when that etcd is
 * the remote's own (its clustermesh-apiserver writes cilium/state/...), "cache" when it is a
 * KVStoreMesh's local etcd that caches the remote (its cluster config says `cached: true`; the data
 * is under cilium/cache/<kind>/v1/<cluster>/..., Cilium's kvstore.StateToCachePrefix).
 */
export type RemoteLayout = "state" | "cache";

/** The prefix a reader watches for a remote cluster's data (with the trailing "/" Cilium adds). */
export function remoteWatchPrefix(kind: DataKind, cluster: string, layout: RemoteLayout = "state"): string {
  if (layout === "cache") {
    // pkg/clustermesh/remote_cluster.go (Run, adapter), pkg/identity/cache/allocator.go
    // (WatchRemoteIdentities: <cache>/<cluster> + "/id"), pkg/ipcache/kvstore.go (WithCachedPrefix:
    // no "default" address space in the cache).
    switch (kind) {
      case "nodes":
        return `${CACHE_PREFIX}/nodes/v1/${cluster}/`;
      case "services":
        return `${CACHE_PREFIX}/services/v1/${cluster}/`;
      case "identities":
        return `${CACHE_PREFIX}/identities/v1/${cluster}/id/`;
      case "ipcache":
        return `${CACHE_PREFIX}/ip/v1/${cluster}/`;
    }
  }
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

/** The canary name a reader waits for: KVStoreMesh names its canaries after the cache prefixes. */
export function canaryName(kind: DataKind, layout: RemoteLayout = "state"): string {
  const name = CANARY_NAMES[kind];
  return layout === "cache" ? `${CACHE_PREFIX}${name.slice(STATE_PREFIX.length)}` : name;
}
