/**
 * The Hubble relay's Services, both selecting the clustermesh-apiserver pod that serves it:
 * - hubble-relay (ClusterIP, port 80 -> 4245, plaintext), as Cilium's: what `hubble --server` and
 *   `kubectl port-forward svc/hubble-relay` reach from inside the cluster;
 * - hubble-relay-mesh (port 4246, mutual TLS), exposed like the clustermesh-apiserver's Service
 *   (NodePort 32446 by default), so the relays of connected clusters merge each other.
 */
import type { V1Service, V1ServicePort } from "@kubernetes/client-node";
import { HUBBLE_RELAY_MESH_PORT, HUBBLE_RELAY_PORT, HubbleObjects } from "../api/hubble.js";
import { MESH_NAMESPACE } from "../api/rbac.js";
import { InstallNames, PART_OF, selectorOf } from "./names.js";
import type { InstallSettings } from "./settings.js";

export function hubbleRelayServices(settings: InstallSettings): V1Service[] {
  const selector = selectorOf(InstallNames.apiserverDeployment);
  const mesh: V1ServicePort = {
    name: "hubble-mesh",
    port: HUBBLE_RELAY_MESH_PORT,
    targetPort: HUBBLE_RELAY_MESH_PORT as never,
    protocol: "TCP",
  };
  if (settings.apiserverServiceType === "NodePort") mesh.nodePort = settings.hubbleRelayNodePort;
  return [
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: HubbleObjects.relayService, namespace: MESH_NAMESPACE, labels: { ...PART_OF } },
      spec: {
        type: "ClusterIP",
        selector,
        ports: [{ name: "grpc", port: 80, targetPort: HUBBLE_RELAY_PORT as never, protocol: "TCP" }],
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: HubbleObjects.relayMeshService, namespace: MESH_NAMESPACE, labels: { ...PART_OF } },
      spec: { type: settings.apiserverServiceType, selector, ports: [mesh] },
    },
  ];
}
