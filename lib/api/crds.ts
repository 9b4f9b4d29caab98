/**
 * The mesh's custom resources (group clustermesh.io, v1alpha1): their TypeScript types and, from the
 * same place, the structural OpenAPI v3 schemas their CustomResourceDefinitions carry. Shaped after
 * Cilium's CiliumNode, CiliumEndpoint and CiliumIdentity, since these are what the
 * clustermesh-apiserver publishes:
 *   MeshNode      (cluster-scoped, name = node):       spec.addresses[{type, ip}], spec.ipam.podCIDRs,
 *                                                       spec.encryption.{key?, wireguardPublicKey?}, spec.bootID
 *   MeshEndpoint  (namespaced, name = pod):            status.{id, identity{id, labels}, networking{addressing[{ipv4}], node},
 *                                                       namedPorts[{name, port, protocol}], state, containerID}
 *   MeshIdentity  (cluster-scoped, name = numeric id): security-labels {"k8s:app": "x", …}
 * A real kube-apiserver prunes every field a structural schema does not declare, so each field the
 * types below carry is declared in the schema next to it (the unit test holds one against the other).
 * Writers: the agent (all three); readers: the agent and the clustermesh-apiserver.
 */
import type { V1CustomResourceDefinition, V1JSONSchemaProps } from "@kubernetes/client-node";

export const MESH_GROUP = "clustermesh.io";
export const MESH_VERSION = "v1alpha1";
export const MESH_API_VERSION = `${MESH_GROUP}/${MESH_VERSION}`;
/** MeshEndpoints carry the node they live on as a label, so each agent can list its own. */
export const NODE_LABEL = "clustermesh.io/node";

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

// Schema builders. Only keywords whose name is the same in @kubernetes/client-node's model and on
// the wire (type, properties, required, items, additionalProperties, minimum, maximum, description):
// its serializer renames `_enum`/`x_kubernetes_…` only at typed levels, not inside `items`, so the
// schema is the same object whether sent by the client or written into a manifest.
const string = (description?: string): V1JSONSchemaProps => ({
  type: "string",
  ...(description ? { description } : {}),
});
const integer = (minimum?: number, maximum?: number): V1JSONSchemaProps => ({
  type: "integer",
  ...(minimum !== undefined ? { minimum } : {}),
  ...(maximum !== undefined ? { maximum } : {}),
});
const object = (
  properties: Record<string, V1JSONSchemaProps>,
  required: string[] = [],
): V1JSONSchemaProps => ({
  type: "object",
  properties,
  ...(required.length > 0 ? { required } : {}),
});
const arrayOf = (items: V1JSONSchemaProps): V1JSONSchemaProps => ({ type: "array", items });
const stringMap: V1JSONSchemaProps = { type: "object", additionalProperties: { type: "string" } };

/** The structural schema of each resource's served version (`spec.versions[].schema.openAPIV3Schema`). */
export const MESH_SCHEMAS: Record<keyof typeof MeshResource, V1JSONSchemaProps> = {
  node: object(
    {
      spec: object(
        {
          addresses: arrayOf(
            object({ type: string("InternalIP or CiliumInternalIP"), ip: string() }, ["type", "ip"]),
          ),
          ipam: object({ podCIDRs: arrayOf(string()) }),
          encryption: object({
            key: integer(0, 255),
            wireguardPublicKey: string("base64 WireGuard public key of the node"),
          }),
          bootID: string("/proc/sys/kernel/random/boot_id: a new value means the node restarted"),
          clusterName: string(),
          clusterID: integer(1, 255),
        },
        ["addresses", "ipam", "clusterName", "clusterID"],
      ),
    },
    ["spec"],
  ),
  endpoint: object(
    {
      status: object(
        {
          id: string("the agent's endpoint id (host interface name)"),
          containerID: string(),
          podUID: string(),
          identity: object({ id: integer(0), labels: arrayOf(string()) }, ["id"]),
          networking: object({ addressing: arrayOf(object({ ipv4: string() })), node: string("node IP") }),
          namedPorts: arrayOf(
            object({ name: string(), port: integer(0, 65535), protocol: string() }, ["name", "port"]),
          ),
          encryption: object({ key: integer(0, 255) }, ["key"]),
          state: string("ready"),
        },
        ["id", "identity", "networking"],
      ),
    },
    ["status"],
  ),
  identity: object({ "security-labels": stringMap }, ["security-labels"]),
};

function crdFor(which: keyof typeof MeshResource): V1CustomResourceDefinition {
  const resource = MeshResource[which];
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
        { name: MESH_VERSION, served: true, storage: true, schema: { openAPIV3Schema: MESH_SCHEMAS[which] } },
      ],
    },
  };
}

/** The CustomResourceDefinitions of the mesh, as the agent creates them and install manifests will carry them. */
export const MESH_CRDS: V1CustomResourceDefinition[] = (
  Object.keys(MeshResource) as (keyof typeof MeshResource)[]
).map(crdFor);
