/**
 * Our own cluster as the remote-cluster manager sees it: name and id from the agent's flags (they
 * win), max-connected-clusters from the clustermesh-config ConfigMap (255 unless it says 511).
 * Pure (reads the cache only): returns the problems for the caller to log.
 */
import type { V1ConfigMap } from "@kubernetes/client-node";
import { MESH_NAMESPACE } from "../../lib/api/rbac.js";
import type { LocalCluster } from "../../lib/clustermesh/cluster-config.js";
import { MeshObjects, parseConfigMapData } from "../../lib/clustermesh/resources.js";
import type { Informer } from "../../lib/k8s/informer.js";
import type { MaxConnectedClusters } from "../../lib/kvstore/cluster-identity.js";

export interface LocalClusterProblem {
  level: "error" | "warn";
  message: string;
  details: Record<string, unknown>;
}

export function localCluster(
  flags: { clusterName: string; clusterId: number },
  configMaps: Pick<Informer<V1ConfigMap>, "get">,
): { local: LocalCluster; problems: LocalClusterProblem[] } {
  let maxConnectedClusters: MaxConnectedClusters = 255;
  const problems: LocalClusterProblem[] = [];
  const configMap = configMaps.get(MeshObjects.config, MESH_NAMESPACE);
  if (configMap) {
    try {
      const mesh = parseConfigMapData(configMap.data, `ConfigMap ${MeshObjects.config}`);
      if (mesh.clusterName !== flags.clusterName || mesh.clusterId !== flags.clusterId) {
        problems.push({
          level: "error",
          message: "clustermesh-config names another cluster than the agent's flags; the flags win",
          details: {
            configMap: { name: mesh.clusterName, id: mesh.clusterId },
            flags: { name: flags.clusterName, id: flags.clusterId },
          },
        });
      }
      if (mesh.maxConnectedClusters === 511) maxConnectedClusters = 511;
    } catch (error) {
      problems.push({
        level: "warn",
        message: "ignoring an invalid clustermesh-config",
        details: { err: String(error) },
      });
    }
  }
  return { local: { name: flags.clusterName, id: flags.clusterId, maxConnectedClusters }, problems };
}
