/**
 * The clustermesh-apiserver's Service: how other clusters' agents reach this cluster's etcd. The same
 * object `meshctl clustermesh enable` writes (lib/clustermesh/enable.ts: name, port "etcd" 2379,
 * NodePort 32379 by default); install adds the selector, so the Deployment's pod is behind it.
 * enable's replace keeps the selector (lib/k8s/client.ts applyService merges the spec).
 */
import type { V1Service, V1ServicePort } from "@kubernetes/client-node";
import { MESH_NAMESPACE } from "../api/rbac.js";
import { MeshObjects } from "../clustermesh/resources.js";
import { ETCD_PORT, InstallNames, PART_OF, selectorOf } from "./names.js";
import type { InstallSettings } from "./settings.js";

export function apiserverService(settings: InstallSettings): V1Service {
  const port: V1ServicePort = {
    name: "etcd",
    port: ETCD_PORT,
    targetPort: ETCD_PORT as never,
    protocol: "TCP",
  };
  if (settings.apiserverServiceType === "NodePort") port.nodePort = settings.nodePort;
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: MeshObjects.service, namespace: MESH_NAMESPACE, labels: { ...PART_OF } },
    spec: {
      type: settings.apiserverServiceType,
      selector: selectorOf(InstallNames.apiserverDeployment),
      ports: [port],
    },
  };
}
