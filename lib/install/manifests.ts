/**
 * Every object `meshctl install` applies, in the order it applies them: what a pod refers to exists
 * before the pod (CRDs, ServiceAccounts and RBAC, ConfigMaps, the Service) and the workloads last.
 * The certificate Secrets are not rendered here: they are issued against the cluster's CA at install
 * time (lib/clustermesh/enable.ts), never printed.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { MESH_CRDS } from "../api/crds.js";
import { MESH_ACCESS, MESH_NAMESPACE, rbacObjects } from "../api/rbac.js";
import { configMapData, DEFAULT_MAX_CONNECTED_CLUSTERS, MeshObjects } from "../clustermesh/resources.js";
import { agentDaemonSet } from "./agent-daemonset.js";
import { apiserverDeployment } from "./apiserver-deployment.js";
import { kubeconfigConfigMap } from "./kubeconfig.js";
import { PART_OF } from "./names.js";
import { apiserverService } from "./service.js";
import type { InstallSettings } from "./settings.js";

/** The cluster's mesh identity, the same ConfigMap `clustermesh enable` writes and reads. */
export function clusterConfigMap(
  settings: InstallSettings,
): KubernetesObject & { data: Record<string, string> } {
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: MeshObjects.config, namespace: MESH_NAMESPACE, labels: { ...PART_OF } },
    data: configMapData({
      clusterName: settings.clusterName,
      clusterId: settings.clusterId,
      maxConnectedClusters: DEFAULT_MAX_CONNECTED_CLUSTERS,
      tunnelProtocol: "vxlan",
      encryption: settings.encryption,
    }),
  };
}

export function crdObjects(): KubernetesObject[] {
  return MESH_CRDS.map((crd) => ({ ...crd, metadata: { ...crd.metadata, labels: { ...PART_OF } } }));
}

/** Everything but the CRDs and the Secrets, in apply order. */
export function workloadObjects(settings: InstallSettings): KubernetesObject[] {
  return [
    ...rbacObjects(MESH_ACCESS.agent),
    ...rbacObjects(MESH_ACCESS.clustermeshApiserver),
    clusterConfigMap(settings),
    kubeconfigConfigMap(settings),
    apiserverService(settings),
    agentDaemonSet(settings),
    apiserverDeployment(settings),
  ];
}

export function installManifests(settings: InstallSettings): KubernetesObject[] {
  return [...crdObjects(), ...workloadObjects(settings)];
}
