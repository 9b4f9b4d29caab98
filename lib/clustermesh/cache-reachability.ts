/**
 * Whether the cluster behind a KVStoreMesh cache is reachable from that KVStoreMesh (ours, not
 * Cilium's: Cilium's agents keep a cached remote's backends however long it is gone). Agents read
 * a cached remote from their local etcd, which stays reachable when the remote does not; this key
 * carries the remote's unreachability through the cache so the stale-backend TTL still applies.
 * Under cilium/cache/ (the local role may read it) but outside every prefix a Cilium reader
 * watches. Pure.
 */

export const CACHE_REACHABILITY_PREFIX = "cilium/cache/.reachability";

export function cacheReachabilityKey(cluster: string): string {
  return `${CACHE_REACHABILITY_PREFIX}/${cluster}`;
}

/** `unreachableSince`: ms since the epoch, or undefined while the remote answers. */
export function encodeCacheReachability(unreachableSince: number | undefined): string {
  return JSON.stringify(
    unreachableSince === undefined ? {} : { unreachableSince: new Date(unreachableSince).toISOString() },
  );
}

/** The remote's unreachability start, or undefined (reachable, absent or unreadable: the cache is trusted). */
export function decodeCacheReachability(raw: string | null): number | undefined {
  if (raw === null) return undefined;
  try {
    const since = (JSON.parse(raw) as { unreachableSince?: unknown }).unreachableSince;
    const at = typeof since === "string" ? Date.parse(since) : Number.NaN;
    return Number.isNaN(at) ? undefined : at;
  } catch {
    // an unreadable value never withdraws backends: the remote is taken as reachable
    return undefined;
  }
}
