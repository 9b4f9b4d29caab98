/**
 * An agent never crashes on a policy: mutated policies (any node replaced by null, a number, a
 * string, a list or an object) either parse or give field errors, and what parses resolves.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePolicy } from "./parse.js";
import { PolicyResolver } from "./resolver.js";

const SEEDS: unknown[] = [
  {
    kind: "CiliumNetworkPolicy",
    metadata: { name: "p", namespace: "demo" },
    specs: [
      {
        endpointSelector: {
          matchLabels: { app: "web" },
          matchExpressions: [{ key: "t", operator: "In", values: ["a"] }],
        },
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { app: "c" } }],
            fromCIDRSet: [{ cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] }],
            toPorts: [{ ports: [{ port: "80", endPort: 90, protocol: "TCP" }, { port: "http" }] }],
          },
        ],
        egressDeny: [{ toEntities: ["world", "mesh"], toCIDR: ["192.0.2.0/24"] }],
        enableDefaultDeny: { ingress: true },
      },
    ],
  },
  {
    kind: "NetworkPolicy",
    metadata: { name: "np", namespace: "demo" },
    spec: {
      podSelector: { matchLabels: { app: "web" } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [
        {
          from: [
            { namespaceSelector: {}, podSelector: {} },
            { ipBlock: { cidr: "fd00::/8", except: ["fd00:1::/32"] } },
          ],
          ports: [
            { port: 80, endPort: 81 },
            { port: "dns", protocol: "UDP" },
          ],
        },
      ],
      egress: [{ to: [{ podSelector: { matchExpressions: [{ key: "x", operator: "Exists" }] } }] }],
    },
  },
];
const REPLACEMENTS: unknown[] = [
  null,
  undefined,
  0,
  -1,
  70000,
  "",
  "x",
  "10.0.0.0/99",
  "ANY",
  [],
  [{}],
  {},
  { a: 1 },
  true,
];

function paths(value: unknown, prefix: Array<string | number> = []): Array<Array<string | number>> {
  if (value === null || typeof value !== "object") return [prefix];
  const children = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value);
  return [prefix, ...children.flatMap(([k, v]) => paths(v, [...prefix, k]))];
}

function mutate(value: unknown, path: Array<string | number>, replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let at = copy;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
  at[path[path.length - 1]] = replacement;
  return copy;
}

describe("bad policies never crash the parser or the resolver", () => {
  it("every node of the seeds replaced by every odd value", () => {
    let parsed = 0;
    let refused = 0;
    for (const seed of SEEDS)
      for (const path of paths(seed))
        for (const replacement of REPLACEMENTS) {
          const object = mutate(seed, path, replacement);
          const { policy, errors } = parsePolicy(object, { clusterName: "c1" });
          if (!policy) {
            assert.ok(errors.list.length > 0, `no policy and no error for ${JSON.stringify(object)}`);
            for (const error of errors.list) assert.ok(error.path.length > 0 && error.message.length > 0);
            refused++;
            continue;
          }
          parsed++;
          const r = new PolicyResolver({ clusterName: "c1" });
          r.upsertEndpoint({ id: "e", identity: 100, namespace: "demo", labels: ["k8s:app=web", "k8s:t=a"] });
          r.upsertIdentities([{ id: 65537, cluster: "c1", labels: ["k8s:app=c"] }]);
          r.upsertPolicy(policy);
          r.deletePolicy(policy);
        }
    assert.ok(parsed > 50 && refused > 200, `${parsed} parsed, ${refused} refused`);
  });
});
