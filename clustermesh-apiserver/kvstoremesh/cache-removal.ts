/**
 * Deleting a remote's cache from the local etcd: its cluster config first (readers stop trusting
 * the cache), its reachability mirror, then its canaries, then every cached key.
 */
import type { Etcd3 } from "etcd3";
import { cacheReachabilityKey } from "../../lib/clustermesh/cache-reachability.js";
import { CLUSTER_CONFIG_PREFIX, keys } from "../../lib/kvstore/paths.js";
import { decodeClusterConfig } from "../../lib/kvstore/values/cluster-config.js";
import { CACHED_KINDS, cacheCanaryKey, cacheRoot } from "./layout.js";

export async function deleteCache(etcd: Etcd3, remote: string): Promise<void> {
  await etcd.delete().key(keys.clusterConfig(remote)).exec();
  await etcd.delete().key(cacheReachabilityKey(remote)).exec();
  for (const kind of CACHED_KINDS) await etcd.delete().key(cacheCanaryKey(kind, remote)).exec();
  for (const kind of CACHED_KINDS) await etcd.delete().prefix(cacheRoot(kind, remote)).exec();
}

/**
 * Remotes cached by a previous run that are no longer configured (removed while this apiserver
 * was down): their cluster config says `cached: true`. Unreadable configs are not ours to judge.
 */
export async function orphanedCaches(etcd: Etcd3, configured: ReadonlySet<string>): Promise<string[]> {
  const configs = await etcd.getAll().prefix(`${CLUSTER_CONFIG_PREFIX}/`).strings();
  const orphans: string[] = [];
  for (const [key, raw] of Object.entries(configs)) {
    const name = key.slice(CLUSTER_CONFIG_PREFIX.length + 1);
    if (configured.has(name)) continue;
    try {
      if (decodeClusterConfig(key, raw).capabilities.cached) orphans.push(name);
    } catch {
      // not a cluster config we can read: not one we wrote, left alone
    }
  }
  return orphans.sort();
}
