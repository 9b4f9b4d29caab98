import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { dumpYaml, type V1JSONSchemaProps } from "@kubernetes/client-node";
import { parse as parseYaml } from "yaml";
import {
  MESH_API_VERSION,
  MESH_CRDS,
  MESH_SCHEMAS,
  type MeshEndpoint,
  type MeshIdentity,
  type MeshNode,
  NODE_LABEL,
} from "./crds.js";
import { POLICY_CRDS, POLICY_SCHEMA } from "./policy-crds.js";

// Every field these objects carry must be declared: a real kube-apiserver prunes undeclared fields.
const node: MeshNode = {
  apiVersion: MESH_API_VERSION,
  kind: "MeshNode",
  metadata: { name: "w1" },
  spec: {
    addresses: [{ type: "InternalIP", ip: "172.18.0.3" }],
    ipam: { podCIDRs: ["10.1.1.0/24"] },
    encryption: { key: 3, wireguardPublicKey: "pub" },
    bootID: "0123",
    clusterName: "c1",
    clusterID: 1,
  },
};
const endpoint: MeshEndpoint = {
  apiVersion: MESH_API_VERSION,
  kind: "MeshEndpoint",
  metadata: { name: "echo", namespace: "demo", labels: { [NODE_LABEL]: "w1" } },
  status: {
    id: "lxc1",
    containerID: "c0ffee",
    podUID: "uid-1",
    identity: { id: 65_536 + 1, labels: ["k8s:app=echo"] },
    networking: { addressing: [{ ipv4: "10.1.1.7" }], node: "172.18.0.3" },
    namedPorts: [{ name: "http", port: 8080, protocol: "TCP" }],
    encryption: { key: 3 },
    state: "ready",
  },
};
const identity: MeshIdentity = {
  apiVersion: MESH_API_VERSION,
  kind: "MeshIdentity",
  metadata: { name: "65537" },
  "security-labels": { "k8s:app": "echo" },
};

/** Paths of the value that the schema does not declare (what an API server would prune). */
function undeclared(value: unknown, schema: V1JSONSchemaProps, path: string): string[] {
  if (Array.isArray(value)) {
    assert.equal(schema.type, "array", `${path}: schema type`);
    return value.flatMap((item, i) => undeclared(item, schema.items as V1JSONSchemaProps, `${path}[${i}]`));
  }
  if (value !== null && typeof value === "object") {
    assert.equal(schema.type, "object", `${path}: schema type`);
    return Object.entries(value).flatMap(([key, child]) => {
      const declared = schema.properties?.[key] ?? schema.additionalProperties;
      return declared
        ? undeclared(child, declared as V1JSONSchemaProps, `${path}.${key}`)
        : [`${path}.${key}`];
    });
  }
  const type = typeof value === "number" ? (Number.isInteger(value) ? "integer" : "number") : typeof value;
  assert.equal(schema.type, type, `${path}: schema type`);
  return [];
}

/** Structural: every level has a type, no x-kubernetes-preserve-unknown-fields, no renamed keywords. */
function structuralProblems(schema: V1JSONSchemaProps, path: string): string[] {
  const problems: string[] = [];
  if (!schema.type) problems.push(`${path}: no type`);
  if (schema.x_kubernetes_preserve_unknown_fields) problems.push(`${path}: preserves unknown fields`);
  // client-node renames `_enum`, `x_kubernetes_…` only at typed levels, not inside items: keep to
  // keywords whose names are the same in both forms
  for (const key of Object.keys(schema))
    if (key.startsWith("_") || key.startsWith("x_") || key.startsWith("x-"))
      problems.push(`${path}: keyword ${key}`);
  for (const [key, child] of Object.entries(schema.properties ?? {}))
    problems.push(...structuralProblems(child, `${path}.${key}`));
  if (schema.items) problems.push(...structuralProblems(schema.items as V1JSONSchemaProps, `${path}[]`));
  if (typeof schema.additionalProperties === "object")
    problems.push(...structuralProblems(schema.additionalProperties as V1JSONSchemaProps, `${path}{}`));
  return problems;
}

describe("mesh CRDs", () => {
  it("declare every field the agent writes", () => {
    const { apiVersion: _a, kind: _k, metadata: _m, ...nodeBody } = node;
    const { apiVersion: _b, kind: _l, metadata: _n, ...endpointBody } = endpoint;
    const { apiVersion: _c, kind: _o, metadata: _p, ...identityBody } = identity;
    assert.deepEqual(undeclared(nodeBody, MESH_SCHEMAS.node, "MeshNode"), []);
    assert.deepEqual(undeclared(endpointBody, MESH_SCHEMAS.endpoint, "MeshEndpoint"), []);
    assert.deepEqual(undeclared(identityBody, MESH_SCHEMAS.identity, "MeshIdentity"), []);
  });

  it("carry structural schemas, the same object on the wire as in TypeScript", () => {
    for (const crd of [...MESH_CRDS, ...POLICY_CRDS]) {
      const name = crd.metadata?.name;
      const schema = crd.spec.versions[0].schema?.openAPIV3Schema as V1JSONSchemaProps;
      assert.deepEqual(structuralProblems(schema, name ?? ""), []);
      // what @kubernetes/client-node serializes (and sends) is the object itself, as a manifest carries it
      assert.deepEqual(parseYaml(dumpYaml(crd)), JSON.parse(JSON.stringify(crd)));
    }
    assert.deepEqual(
      MESH_CRDS.map((c) => c.metadata?.name),
      ["meshnodes.clustermesh.io", "meshendpoints.clustermesh.io", "meshidentities.clustermesh.io"],
    );
  });

  it("policy CRDs declare every L3/L4 field the parser reads, so none is pruned", () => {
    const rule = {
      fromEndpoints: [
        { matchLabels: { app: "x" }, matchExpressions: [{ key: "a", operator: "In", values: ["b"] }] },
      ],
      fromEntities: ["mesh"],
      fromCIDR: ["10.0.0.0/8"],
      fromCIDRSet: [{ cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] }],
      toPorts: [{ ports: [{ port: "80", endPort: 90, protocol: "TCP" }] }],
    };
    const egress = {
      toEndpoints: rule.fromEndpoints,
      toEntities: ["world"],
      toCIDR: ["192.0.2.0/24"],
      toCIDRSet: rule.fromCIDRSet,
      toPorts: rule.toPorts,
    };
    const spec = {
      endpointSelector: { matchLabels: { app: "web" } },
      ingress: [rule],
      ingressDeny: [rule],
      egress: [egress],
      egressDeny: [egress],
      enableDefaultDeny: { ingress: true, egress: false },
    };
    const body = {
      spec,
      specs: [spec],
      status: { conditions: [{ type: "Valid", status: "True", reason: "Valid", message: "enforced" }] },
    };
    assert.deepEqual(undeclared(body, POLICY_SCHEMA, "CiliumNetworkPolicy"), []);
    assert.deepEqual(
      POLICY_CRDS.map((c) => [c.metadata?.name, c.spec.scope]),
      [
        ["ciliumnetworkpolicies.cilium.io", "Namespaced"],
        ["ciliumclusterwidenetworkpolicies.cilium.io", "Cluster"],
      ],
    );
  });
});
