/**
 * How `meshctl clustermesh connect` tells a cluster's Hubble relay about another cluster's relay:
 * the other cluster's `hubble-relay-mesh` Service address goes into this cluster's ConfigMap
 * `hubble-relay-peers` (<cluster>: <host:port>), which the relay watches — no restart. A cluster
 * installed without the relay has no such Service: nothing is recorded for it.
 */
import type { CoreV1Api, V1Service } from "@kubernetes/client-node";
import { HUBBLE_RELAY_MESH_PORT, HubbleObjects } from "../api/hubble.js";
import { MESH_NAMESPACE } from "../api/rbac.js";
import { isConflict, isNotFound } from "../k8s/client.js";

/** host:port of a cluster's relay for other clusters, or undefined when it runs none. */
export async function readRelayMeshEndpoint(core: CoreV1Api): Promise<string | undefined> {
  let service: V1Service;
  try {
    service = await core.readNamespacedService({
      name: HubbleObjects.relayMeshService,
      namespace: MESH_NAMESPACE,
    });
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  const port = service.spec?.ports?.[0];
  if (service.spec?.type === "NodePort" && port?.nodePort) {
    // as for the clustermesh-apiserver: the first node's ExternalIP, else its InternalIP
    const addresses = (await core.listNode()).items[0]?.status?.addresses ?? [];
    const ip =
      addresses.find((a) => a.type === "ExternalIP")?.address ??
      addresses.find((a) => a.type === "InternalIP")?.address;
    return ip ? `${ip}:${port.nodePort}` : undefined;
  }
  const ingress = service.status?.loadBalancer?.ingress?.[0]?.ip;
  if (service.spec?.type === "LoadBalancer")
    return ingress ? `${ingress}:${port?.port ?? HUBBLE_RELAY_MESH_PORT}` : undefined;
  return service.spec?.clusterIP
    ? `${service.spec.clusterIP}:${port?.port ?? HUBBLE_RELAY_MESH_PORT}`
    : undefined;
}

/** Read-modify-write of the ConfigMap, retried on a conflicting writer. */
export async function updateRelayPeers(
  core: CoreV1Api,
  change: (data: Record<string, string>) => void,
): Promise<void> {
  const name = HubbleObjects.relayPeers;
  for (let attempt = 0; ; attempt++) {
    let existing: Awaited<ReturnType<CoreV1Api["readNamespacedConfigMap"]>> | undefined;
    try {
      existing = await core.readNamespacedConfigMap({ name, namespace: MESH_NAMESPACE });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    const data: Record<string, string> = { ...(existing?.data ?? {}) };
    change(data);
    try {
      if (existing)
        await core.replaceNamespacedConfigMap({
          name,
          namespace: MESH_NAMESPACE,
          body: { ...existing, data },
        });
      else
        await core.createNamespacedConfigMap({
          namespace: MESH_NAMESPACE,
          body: {
            metadata: {
              name,
              namespace: MESH_NAMESPACE,
              labels: { "app.kubernetes.io/part-of": "clustermesh" },
            },
            data,
          },
        });
      return;
    } catch (error) {
      if (!isConflict(error) || attempt >= 5) throw error;
    }
  }
}
