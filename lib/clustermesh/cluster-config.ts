/**
 * Checks a remote cluster's `cilium/cluster-config/<name>` before anything of it is used
 * (Cilium's ValidateRemoteConfig, https://github.com/cilium/cilium/blob/main/pkg/clustermesh/types/types.go; a cluster id is reserved
 * by one remote at a time, https://github.com/cilium/cilium/blob/main/pkg/clustermesh/common/idsmgr.go). Pure.
 */
import {
  clusterIdProblem,
  clusterNameProblem,
  type MaxConnectedClusters,
} from "../kvstore/cluster-identity.js";
import type { ClusterConfig } from "../kvstore/values/cluster-config.js";

export interface LocalCluster {
  name: string;
  id: number;
  maxConnectedClusters: MaxConnectedClusters;
}

/**
 * Why the remote `name` with `config` must not be used, or undefined. `idsInUse` maps cluster ids
 * already reserved by other connected remotes to their names.
 */
export function remoteConfigProblem(
  name: string,
  config: ClusterConfig,
  local: LocalCluster,
  idsInUse: ReadonlyMap<number, string>,
): string | undefined {
  const nameProblem = clusterNameProblem(name, config.id);
  if (nameProblem) return nameProblem;
  if (config.id === 0) return "clusterID 0 is reserved";
  const idProblem = clusterIdProblem(config.id, local.maxConnectedClusters);
  if (idProblem) return idProblem;
  if (config.id === local.id) return `clusterID ${config.id} is assigned to the local cluster ${local.name}`;
  const user = idsInUse.get(config.id);
  if (user !== undefined && user !== name) return `clusterID ${config.id} is already used by ${user}`;
  // Extended mode (511) needs every cluster to agree; in the default mode Cilium accepts any value.
  if (
    local.maxConnectedClusters !== 255 &&
    config.capabilities.maxConnectedClusters !== local.maxConnectedClusters
  ) {
    return `remote max-connected-clusters ${config.capabilities.maxConnectedClusters} differs from the local ${local.maxConnectedClusters}`;
  }
  return undefined;
}
