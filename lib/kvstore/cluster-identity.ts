/**
 * Cluster names, cluster ids and the identity space they own (https://github.com/cilium/cilium/blob/main/pkg/clustermesh/types/option.go,
 * https://github.com/cilium/cilium/blob/main/pkg/identity/numericidentity.go). Pure.
 */

export type MaxConnectedClusters = 255 | 511;
export const DEFAULT_MAX_CONNECTED_CLUSTERS: MaxConnectedClusters = 255;
export const CLUSTER_NAME_MAX_LENGTH = 32;
const CLUSTER_NAME_PATTERN = /^([a-z0-9][-a-z0-9]*)?[a-z0-9]$/;
/** Identities below this are reserved (host, world, …) and the same in every cluster. */
export const RESERVED_IDENTITY_LIMIT = 256;

/** Why a cluster name is unusable, or undefined when it is fine (Cilium's validateName). */
export function clusterNameProblem(name: string, clusterId?: number): string | undefined {
  if (name.length === 0) return "cluster name is empty";
  if (name.length > CLUSTER_NAME_MAX_LENGTH) {
    return `cluster name "${name}" is longer than ${CLUSTER_NAME_MAX_LENGTH} characters`;
  }
  if (!CLUSTER_NAME_PATTERN.test(name)) {
    return `cluster name "${name}" must consist of lower case alphanumerics and "-", starting and ending with an alphanumeric`;
  }
  if (name === "default" && clusterId !== undefined && clusterId !== 0) {
    return `cluster name "default" is not allowed with a cluster id (${clusterId})`;
  }
  return undefined;
}

/** Why a cluster id is unusable in a mesh, or undefined when it is fine. 0 means "no mesh". */
export function clusterIdProblem(
  id: number,
  maxConnected: MaxConnectedClusters = DEFAULT_MAX_CONNECTED_CLUSTERS,
): string | undefined {
  if (!Number.isInteger(id) || id < 1 || id > maxConnected) {
    return `cluster id ${id} is outside 1..${maxConnected}`;
  }
  return undefined;
}

export function clusterIdShift(maxConnected: MaxConnectedClusters = DEFAULT_MAX_CONNECTED_CLUSTERS): number {
  return maxConnected === 511 ? 15 : 16;
}

/** Inclusive range of the global identities cluster `clusterId` allocates from. */
export function identityRange(
  clusterId: number,
  maxConnected: MaxConnectedClusters = DEFAULT_MAX_CONNECTED_CLUSTERS,
): { first: number; last: number } {
  const shift = clusterIdShift(maxConnected);
  if (clusterId === 0) return { first: RESERVED_IDENTITY_LIMIT, last: 2 ** shift - 1 };
  return { first: clusterId * 2 ** shift, last: (clusterId + 1) * 2 ** shift - 1 };
}

export function clusterIdOfIdentity(
  identity: number,
  maxConnected: MaxConnectedClusters = DEFAULT_MAX_CONNECTED_CLUSTERS,
): number {
  return Math.floor(identity / 2 ** clusterIdShift(maxConnected)) & maxConnected;
}

export function identityBelongsTo(
  identity: number,
  clusterId: number,
  maxConnected: MaxConnectedClusters = DEFAULT_MAX_CONNECTED_CLUSTERS,
): boolean {
  const { first, last } = identityRange(clusterId, maxConnected);
  return Number.isInteger(identity) && identity >= first && identity <= last;
}
