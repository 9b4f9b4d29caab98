import type { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { MESH_NAMESPACE } from "../api/rbac.js";
import { apiErrorMessage, coreApi, decodeSecretData, isNotFound, readSecret } from "../k8s/client.js";
import { UsageError } from "../usage-error.js";
import { disconnectCommand } from "./hints.js";
import { isRemoteClusterConfig } from "./remote-config.js";
import { MeshObjects } from "./resources.js";

export interface DisableOptions {
  context: string;
  /** The kubeconfig file the user named, only for the commands printed in hints. */
  kubeconfig?: string;
  /** The kubeconfig context through which the user reaches a connected cluster (for the disconnect hint). */
  contextOf: (clusterName: string) => string;
  progress: (line: string) => void;
}

/**
 * What `enable` created and `disable` removes: the mesh identity, the apiserver's certificates, the
 * remotes Secret and the NodePort Service. The CA Secret stays: it is the trust root the other
 * clusters of the mesh share, and a later `enable` issues from it again.
 */
export const ENABLE_OBJECTS: { kind: "ConfigMap" | "Secret" | "Service"; name: string }[] = [
  { kind: "Service", name: MeshObjects.service },
  { kind: "ConfigMap", name: MeshObjects.config },
  { kind: "Secret", name: MeshObjects.serverCert },
  { kind: "Secret", name: MeshObjects.adminCert },
  { kind: "Secret", name: MeshObjects.remoteCert },
  { kind: "Secret", name: MeshObjects.localCert },
  { kind: "Secret", name: MeshObjects.remotes },
  { kind: "Secret", name: MeshObjects.kvstoremesh },
];

/** The clusters this cluster is configured to connect to (keys of its remotes Secret). */
async function connectedClusters(core: CoreV1Api): Promise<string[]> {
  const remotes = await readSecret(core, MeshObjects.remotes);
  return Object.keys(remotes?.data ?? {})
    .filter((key) => isRemoteClusterConfig(decodeSecretData(remotes, key) ?? ""))
    .sort();
}

async function deleteObject(core: CoreV1Api, kind: string, name: string): Promise<boolean> {
  const target = { name, namespace: MESH_NAMESPACE };
  try {
    if (kind === "Service") await core.deleteNamespacedService(target);
    else if (kind === "ConfigMap") await core.deleteNamespacedConfigMap(target);
    else await core.deleteNamespacedSecret(target);
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

/**
 * `meshctl clustermesh disable`: undoes `enable` (Cilium's `cilium clustermesh disable`). Refuses
 * while the cluster is still connected to others, naming them and the disconnect command: their
 * agents would otherwise keep a connection config to an apiserver that is gone. Idempotent; returns
 * what it removed ("Kind/name").
 */
export async function disableClusterMesh(kc: KubeConfig, options: DisableOptions): Promise<string[]> {
  const core = coreApi(kc);
  let connected: string[];
  try {
    connected = await connectedClusters(core);
  } catch (error) {
    throw new Error(
      `context ${options.context}: cannot reach the Kubernetes API: ${apiErrorMessage(error)}`,
      {
        cause: error,
      },
    );
  }
  if (connected.length > 0) {
    throw new UsageError(
      `context ${options.context}: still connected to ${connected.join(", ")}; disconnect first: ${disconnectCommand(
        options.context,
        options.kubeconfig,
        connected.map(options.contextOf),
      )}`,
    );
  }
  const removed: string[] = [];
  for (const { kind, name } of ENABLE_OBJECTS) {
    if (await deleteObject(core, kind, name)) removed.push(`${kind}/${name}`);
  }
  options.progress(
    removed.length
      ? `Removed from kube-system: ${removed.join(", ")} (kept Secret ${MeshObjects.ca}, the mesh's CA)`
      : `ClusterMesh is not enabled in context ${options.context}; nothing to remove`,
  );
  return removed;
}
