/**
 * The configured remote clusters as the agent's Secrets cache holds them (the clustermesh-remotes
 * and remote-cert Secrets, parsed by config.ts). Level-triggered: the manager always gets the whole set.
 */
import type { V1Secret } from "@kubernetes/client-node";
import { MESH_NAMESPACE } from "../../lib/api/rbac.js";
import type { RemoteEntry } from "../../lib/clustermesh/remote-entries.js";
import { MeshObjects } from "../../lib/clustermesh/resources.js";
import type { Informer } from "../../lib/k8s/informer.js";
import { remoteEntries } from "./config.js";

/** undefined until the cache has synced (an empty cache then would disconnect every remote). */
export function configuredRemotes(
  secrets: Informer<V1Secret>,
  localClusterName: string,
): RemoteEntry[] | undefined {
  if (!secrets.synced()) return undefined;
  return remoteEntries({
    localClusterName,
    remotes: secrets.get(MeshObjects.remotes, MESH_NAMESPACE)?.data,
    remoteCert: secrets.get(MeshObjects.remoteCert, MESH_NAMESPACE)?.data,
    localCert: secrets.get(MeshObjects.localCert, MESH_NAMESPACE)?.data,
  });
}
