/**
 * The mesh's custom resources (group clustermesh.io, v1alpha1), shaped after Cilium's CiliumNode,
 * CiliumEndpoint and CiliumIdentity, since these are what the clustermesh-apiserver publishes:
 *   MeshNode      (cluster-scoped, name = node):       spec.addresses[{type, ip}], spec.ipam.podCIDRs,
 *                                                       spec.encryption.{key?, wireguardPublicKey?}, spec.bootID
 *   MeshEndpoint  (namespaced, name = pod):            status.{id, identity{id, labels}, networking{addressing[{ipv4}], node},
 *                                                       namedPorts[{name, port, protocol}], state, containerID}
 *   MeshIdentity  (cluster-scoped, name = numeric id): security-labels {"k8s:app": "x", …}
 * Schemas preserve unknown fields: the agent validates what it reads itself.
 */
import {
  ApiextensionsV1Api,
  type KubeConfig,
  type V1CustomResourceDefinition,
} from "@kubernetes/client-node";
import { apiStatus } from "../../lib/k8s/client.js";
import type { Logger } from "../../lib/log.js";

export const MESH_GROUP = "clustermesh.io";
export const MESH_VERSION = "v1alpha1";

export const MeshResource = {
  node: { kind: "MeshNode", plural: "meshnodes", singular: "meshnode", scope: "Cluster", shortNames: ["mn"] },
  endpoint: {
    kind: "MeshEndpoint",
    plural: "meshendpoints",
    singular: "meshendpoint",
    scope: "Namespaced",
    shortNames: ["mep"],
  },
  identity: {
    kind: "MeshIdentity",
    plural: "meshidentities",
    singular: "meshidentity",
    scope: "Cluster",
    shortNames: ["mid"],
  },
} as const;

export interface MeshNode {
  apiVersion: string;
  kind: "MeshNode";
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string> };
  spec: {
    addresses: { type: "InternalIP" | "CiliumInternalIP"; ip: string }[];
    ipam: { podCIDRs: string[] };
    encryption?: { key?: number; wireguardPublicKey?: string };
    bootID?: string;
    clusterName: string;
    clusterID: number;
  };
}

export interface MeshEndpointStatus {
  /** the agent's endpoint id (host interface name) */
  id: string;
  containerID: string;
  podUID?: string;
  identity: { id: number; labels: string[] };
  networking: { addressing: { ipv4: string }[]; node: string };
  namedPorts: { name: string; port: number; protocol: string }[];
  /** The node's IPsec key index, as in Cilium's CiliumEndpoint status.encryption.key (absent: none). */
  encryption?: { key: number };
  state: "ready";
}

export interface MeshEndpoint {
  apiVersion: string;
  kind: "MeshEndpoint";
  metadata: {
    name: string;
    namespace: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string }[];
  };
  status: MeshEndpointStatus;
}

export interface MeshIdentity {
  apiVersion: string;
  kind: "MeshIdentity";
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string> };
  "security-labels": Record<string, string>;
}

export const MESH_API_VERSION = `${MESH_GROUP}/${MESH_VERSION}`;
/** MeshEndpoints carry the node they live on as a label, so each agent can list its own. */
export const NODE_LABEL = "clustermesh.io/node";

function crdFor(resource: (typeof MeshResource)[keyof typeof MeshResource]): V1CustomResourceDefinition {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${resource.plural}.${MESH_GROUP}` },
    spec: {
      group: MESH_GROUP,
      scope: resource.scope,
      names: {
        kind: resource.kind,
        listKind: `${resource.kind}List`,
        plural: resource.plural,
        singular: resource.singular,
        shortNames: [...resource.shortNames],
      },
      versions: [
        {
          name: MESH_VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", x_kubernetes_preserve_unknown_fields: true } },
        },
      ],
    },
  };
}

export const MESH_CRDS: V1CustomResourceDefinition[] = Object.values(MeshResource).map(crdFor);

/** Creates the CRDs that are absent. Idempotent: agents starting together all call it; 409 is success. */
export async function ensureCrds(kubeConfig: KubeConfig, log: Logger): Promise<void> {
  const api = kubeConfig.makeApiClient(ApiextensionsV1Api);
  for (const crd of MESH_CRDS) {
    const name = crd.metadata?.name ?? "";
    try {
      await api.readCustomResourceDefinition({ name });
      continue;
    } catch (error) {
      if (apiStatus(error) !== 404) throw error;
    }
    try {
      await api.createCustomResourceDefinition({ body: crd });
      log.info({ crd: name }, "created CRD");
    } catch (error) {
      if (apiStatus(error) !== 409) throw error;
    }
  }
}
