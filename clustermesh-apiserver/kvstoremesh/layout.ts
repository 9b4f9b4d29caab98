/**
 * Where KVStoreMesh puts a remote cluster in the local etcd, and what it says about it. Pure.
 * Cilium: https://github.com/cilium/cilium/blob/main/pkg/clustermesh/kvstoremesh/remote_cluster.go
 * (newReflector: a SyncStore on StateToCachePrefix(prefix)/<cluster> with the synced-key override
 * StateToCachePrefix(prefix); Run: the cluster config copy with cached + syncedCanaries).
 */
import {
  canaryName,
  type DataKind,
  keys,
  type RemoteLayout,
  remoteWatchPrefix,
} from "../../lib/kvstore/paths.js";
import type { ClusterConfig } from "../../lib/kvstore/values/cluster-config.js";

export const CACHED_KINDS: readonly DataKind[] = ["nodes", "services", "identities", "ipcache"];

/** Where the remote's own etcd (or the KVStoreMesh serving it) holds `kind`: its config says. */
export function sourceLayout(config: ClusterConfig): RemoteLayout {
  return config.capabilities.cached ? "cache" : "state";
}

/**
 * The local SyncStore prefix (no trailing "/") of `kind` of `remote`. Suffixes under it are those
 * under the remote's watch prefix, so an entry's suffix is copied as is: nodes/services
 * "<cluster>/<name>" keys lose nothing, identities land under ".../<remote>/id/<id>", ipcache
 * entries under ".../<remote>/<ip>" (no "default" address space in the cache).
 */
export function cacheStorePrefix(kind: DataKind, remote: string): string {
  return remoteWatchPrefix(kind, remote, "cache").replace(/\/$/, "");
}

/** Every key of `kind` of `remote` in the cache (with the trailing "/"): deleted when it is removed. */
export function cacheRoot(kind: DataKind, remote: string): string {
  return `${canaryName(kind, "cache")}/${remote}/`;
}

/** The sync canary readers of the cache wait for: cilium/synced/<remote>/cilium/cache/<kind>/v1. */
export function cacheCanaryKey(kind: DataKind, remote: string): string {
  return keys.canary(remote, canaryName(kind, "cache"));
}

/**
 * The cluster config KVStoreMesh writes for a cached remote under cilium/cluster-config/<remote>:
 * its id and max-connected-clusters (readers in extended mode compare it), `cached` (readers switch
 * to the cache layout) and `syncedCanaries` (the cache always has them). Service exports are not
 * cached, so their capability is left out: readers then do not wait for that canary.
 */
export function cachedClusterConfig(source: ClusterConfig): ClusterConfig {
  return {
    id: source.id,
    capabilities: {
      syncedCanaries: true,
      cached: true,
      maxConnectedClusters: source.capabilities.maxConnectedClusters,
      endpointSlicesExportMode: "",
    },
  };
}
