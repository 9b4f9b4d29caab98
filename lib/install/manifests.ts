/**
 * Every object `meshctl install` applies, in the order it applies them: what a pod refers to exists
 * before the pod (CRDs, ServiceAccounts and RBAC, ConfigMaps, the Service) and the workloads last.
 * The certificate Secrets are not rendered here: they are issued against the cluster's CA at install
 * time (lib/clustermesh/enable.ts), never printed.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { MESH_CRDS } from "../api/crds.js";
import { POLICY_CRDS } from "../api/policy-crds.js";
import { MESH_ACCESS, MESH_NAMESPACE, rbacObjects } from "../api/rbac.js";
import { configMapData, DEFAULT_MAX_CONNECTED_CLUSTERS, MeshObjects } from "../clustermesh/resources.js";
import { agentDaemonSet } from "./agent-daemonset.js";
import { apiserverDeployment } from "./apiserver-deployment.js";
import { hubbleRelayServices } from "./hubble-relay-services.js";
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
      kvstoremesh: settings.kvstoremesh,
    }),
  };
}

/** The mesh's CRDs and the policy CRDs (cilium.io/v2 CiliumNetworkPolicy, CiliumClusterwideNetworkPolicy). */
export function crdObjects(): KubernetesObject[] {
  return [...MESH_CRDS, ...POLICY_CRDS].map((crd) => ({
    ...crd,
    metadata: { ...crd.metadata, labels: { ...PART_OF } },
  }));
}

/**
 * What install applies after the CRDs and after `clustermesh enable`'s code has written the
 * Secrets and the clustermesh-config ConfigMap (enable owns that one: applying it here too would
 * make the two writers undo each other's metadata on every run).
 */
export function workloadObjects(settings: InstallSettings): KubernetesObject[] {
  return [
    ...rbacObjects(MESH_ACCESS.agent),
    ...rbacObjects(MESH_ACCESS.clustermeshApiserver),
    kubeconfigConfigMap(settings),
    apiserverService(settings),
    ...(settings.hubbleRelay ? hubbleRelayServices(settings) : []),
    agentDaemonSet(settings),
    apiserverDeployment(settings),
  ];
}

/** Every object, for --dry-run (`kubectl apply -f`): the ConfigMap enable writes included, Secrets not. */
export function installManifests(settings: InstallSettings): KubernetesObject[] {
  return [...crdObjects(), clusterConfigMap(settings), ...workloadObjects(settings)];
}
