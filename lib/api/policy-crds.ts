/**
 * CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy (cilium.io/v2), the L3/L4 part the mesh
 * enforces, with structural schemas: the API server refuses what a schema can say is wrong (a port
 * out of range, an unknown entity or protocol, a selector operator, a field of the wrong type) and
 * the agents report the rest on the policy's status (lib/policy/status.ts). Field names and shapes
 * are Cilium's (https://github.com/cilium/cilium/blob/main/pkg/policy/api/rule.go), so Cilium's
 * policies apply unchanged.
 *
 * Only keywords whose name is the same in @kubernetes/client-node's model and on the wire (see
 * ./crds.ts): no `enum` (its model calls it `_enum`, and the rename is not applied inside `items`:
 * server-side apply then saw an unknown keyword), patterns instead. No
 * x-kubernetes-preserve-unknown-fields: fields outside L3/L4 (L7 `rules`, `toFQDNs`, …) are declared
 * as bare objects/lists, so that their presence survives pruning and the agent refuses the policy
 * instead of enforcing a wider one.
 */
import type { V1CustomResourceDefinition, V1JSONSchemaProps } from "@kubernetes/client-node";

/**
 * Cilium's entities (https://github.com/cilium/cilium/blob/main/pkg/policy/api/entity.go) plus `mesh`:
 * every identity of every connected cluster (what `cluster` meant before Cilium 1.19 made selectors
 * local-cluster by default). lib/policy/peers.ts says what each selects.
 */
export const POLICY_ENTITIES = [
  "all",
  "world",
  "world-ipv4",
  "world-ipv6",
  "cluster",
  "mesh",
  "host",
  "remote-node",
  "kube-apiserver",
  "health",
  "init",
  "unmanaged",
] as const;

export const CILIUM_GROUP = "cilium.io";
export const CILIUM_VERSION = "v2";

export const PolicyResource = {
  namespaced: {
    kind: "CiliumNetworkPolicy",
    plural: "ciliumnetworkpolicies",
    singular: "ciliumnetworkpolicy",
    scope: "Namespaced",
    shortNames: ["cnp", "ciliumnp"],
  },
  clusterwide: {
    kind: "CiliumClusterwideNetworkPolicy",
    plural: "ciliumclusterwidenetworkpolicies",
    singular: "ciliumclusterwidenetworkpolicy",
    scope: "Cluster",
    shortNames: ["ccnp"],
  },
} as const;

const string = (pattern?: string, description?: string): V1JSONSchemaProps => ({
  type: "string",
  ...(pattern ? { pattern } : {}),
  ...(description ? { description } : {}),
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
/** Declared so its presence is kept (and refused by the agent), its content pruned. */
const unsupported = (description: string): V1JSONSchemaProps => ({ type: "object", description });
const unsupportedList = (description: string): V1JSONSchemaProps => ({
  type: "array",
  description,
  items: { type: "object" },
});

/**
 * A port number 0..65535 or an IANA port name, which has a letter (Cilium's PortProtocol.port is a
 * string). RE2, as the API server evaluates it: no lookahead.
 */
const PORT_PATTERN =
  "^([0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]|([a-z0-9]-?)*[a-z](-?[a-z0-9])*)$";
/** Address/prefix, IPv4 or IPv6; the agent parses it exactly. */
const CIDR_PATTERN = "^[0-9a-fA-F:.]+/[0-9]{1,3}$";

const labelSelector = object({
  matchLabels: { type: "object", additionalProperties: { type: "string", maxLength: 63 } },
  matchExpressions: arrayOf(
    object(
      {
        key: string(),
        operator: string("^(In|NotIn|Exists|DoesNotExist)$"),
        values: arrayOf(string()),
      },
      ["key", "operator"],
    ),
  ),
});
const cidrSet = object({
  cidr: string(CIDR_PATTERN),
  except: arrayOf(string(CIDR_PATTERN)),
  cidrGroupRef: string(),
});
const portRule = object({
  ports: arrayOf(
    object({
      port: string(PORT_PATTERN),
      endPort: { type: "integer", minimum: 0, maximum: 65535 },
      protocol: string("^(TCP|UDP|SCTP|ANY)$", "TCP, UDP, SCTP or ANY (default)"),
    }),
  ),
  rules: unsupported("L7 rules: not supported, a policy with them is refused"),
  terminatingTLS: unsupported("not supported"),
  originatingTLS: unsupported("not supported"),
  serverNames: arrayOf(string()),
  listener: unsupported("not supported"),
});
const entity = string(`^(${POLICY_ENTITIES.join("|")})$`);

function ruleSchema(direction: "ingress" | "egress", deny: boolean): V1JSONSchemaProps {
  const p = direction === "ingress" ? "from" : "to";
  const properties: Record<string, V1JSONSchemaProps> = {
    [`${p}Endpoints`]: arrayOf(labelSelector),
    [`${p}Entities`]: arrayOf(entity),
    [`${p}CIDR`]: arrayOf(string(CIDR_PATTERN)),
    [`${p}CIDRSet`]: arrayOf(cidrSet),
    toPorts: arrayOf(portRule),
    [`${p}Requires`]: unsupportedList("not supported"),
    [`${p}Groups`]: unsupportedList("not supported"),
    [`${p}Nodes`]: unsupportedList("not supported"),
    icmps: unsupportedList("not supported"),
  };
  if (!deny) properties.authentication = unsupported("not supported");
  if (direction === "egress" && !deny) {
    properties.toFQDNs = unsupportedList("not supported");
    properties.toServices = unsupportedList("not supported");
  }
  return object(properties);
}

const ruleSpec = object({
  endpointSelector: labelSelector,
  nodeSelector: unsupported("host policies: not supported"),
  ingress: arrayOf(ruleSchema("ingress", false)),
  ingressDeny: arrayOf(ruleSchema("ingress", true)),
  egress: arrayOf(ruleSchema("egress", false)),
  egressDeny: arrayOf(ruleSchema("egress", true)),
  enableDefaultDeny: object({ ingress: { type: "boolean" }, egress: { type: "boolean" } }),
  description: string(),
  labels: arrayOf(object({ key: string(), value: string(), source: string() })),
});

/** The condition the agents write (lib/policy/status.ts). */
const status = object({
  conditions: arrayOf(
    object(
      {
        type: string(),
        status: string("^(True|False|Unknown)$"),
        reason: string(),
        message: string(),
        lastTransitionTime: string(),
        observedGeneration: { type: "integer", minimum: 0 },
      },
      ["type", "status"],
    ),
  ),
});

export const POLICY_SCHEMA: V1JSONSchemaProps = object({ spec: ruleSpec, specs: arrayOf(ruleSpec), status });

function crdFor(which: keyof typeof PolicyResource): V1CustomResourceDefinition {
  const resource = PolicyResource[which];
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${resource.plural}.${CILIUM_GROUP}` },
    spec: {
      group: CILIUM_GROUP,
      scope: resource.scope,
      names: {
        kind: resource.kind,
        listKind: `${resource.kind}List`,
        plural: resource.plural,
        singular: resource.singular,
        shortNames: [...resource.shortNames],
        categories: ["cilium", "ciliumpolicy"],
      },
      versions: [
        {
          name: CILIUM_VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: POLICY_SCHEMA },
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: "Valid", type: "string", jsonPath: '.status.conditions[?(@.type=="Valid")].status' },
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
        },
      ],
    },
  };
}

/** The policy CRDs `meshctl install` applies next to the mesh's own (lib/api/crds.ts). */
export const POLICY_CRDS: V1CustomResourceDefinition[] = [crdFor("namespaced"), crdFor("clusterwide")];
