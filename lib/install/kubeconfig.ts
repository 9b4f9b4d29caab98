/**
 * The kubeconfig the mesh's pods read: the agent's `--kubeconfig` flag and the
 * clustermesh-apiserver's take a file, and on a cluster without kube-proxy the in-cluster
 * `kubernetes` Service IP leads nowhere, so the server is the one the user named
 * (--k8s-service-host/--k8s-service-port, as Cilium's k8sServiceHost), and the credentials are the
 * pod's own projected ServiceAccount token and CA (read from the files on each request, so token
 * rotation is followed: client-node reads `token-file` each time).
 */
import { isIPv6 } from "node:net";
import type { V1ConfigMap } from "@kubernetes/client-node";
import { MESH_NAMESPACE } from "../api/rbac.js";
import { InstallNames, PART_OF } from "./names.js";
import type { InstallSettings } from "./settings.js";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
export const KUBECONFIG_MOUNT = "/etc/clustermesh/kubeconfig";
export const KUBECONFIG_KEY = "kubeconfig";

export function apiServerUrl(settings: Pick<InstallSettings, "k8sServiceHost" | "k8sServicePort">): string {
  const host = isIPv6(settings.k8sServiceHost) ? `[${settings.k8sServiceHost}]` : settings.k8sServiceHost;
  return `https://${host}:${settings.k8sServicePort}`;
}

export function kubeconfigConfigMap(settings: InstallSettings): V1ConfigMap {
  const kubeconfig = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: settings.clusterName,
        cluster: { server: apiServerUrl(settings), "certificate-authority": `${SERVICE_ACCOUNT_DIR}/ca.crt` },
      },
    ],
    users: [{ name: "pod-service-account", user: { "token-file": `${SERVICE_ACCOUNT_DIR}/token` } }],
    contexts: [
      { name: "in-cluster", context: { cluster: settings.clusterName, user: "pod-service-account" } },
    ],
    "current-context": "in-cluster",
  };
  return {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: InstallNames.kubeconfigConfigMap, namespace: MESH_NAMESPACE, labels: { ...PART_OF } },
    // JSON is YAML: the kubeconfig loaders read either
    data: { [KUBECONFIG_KEY]: `${JSON.stringify(kubeconfig, null, 2)}\n` },
  };
}
