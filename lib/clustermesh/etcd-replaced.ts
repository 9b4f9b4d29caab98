/**
 * Whether the etcd a session talks to is still the one it listed: a watch resumed on another etcd
 * (or on the same one wiped and restarted on the same URLs, which keeps its cluster id) would
 * silently skip everything below the old revision. Pure.
 */

export interface SeenEtcd {
  clusterId: string | undefined;
  revision: bigint;
}

/** Why the answer with this header comes from a replaced etcd, or undefined; updates `seen`. */
export function etcdReplacedReason(
  seen: SeenEtcd,
  header: { cluster_id: string; revision: string },
): string | undefined {
  seen.clusterId ??= header.cluster_id;
  if (header.cluster_id !== seen.clusterId)
    return `etcd cluster id changed from ${seen.clusterId} to ${header.cluster_id}`;
  const revision = BigInt(header.revision);
  if (revision < seen.revision)
    return `etcd revision went back from ${seen.revision} to ${revision}: the remote etcd was replaced`;
  seen.revision = revision;
  return undefined;
}
