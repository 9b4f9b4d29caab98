import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parsePolicy } from "./parse.js";
import { ALLOW_FROM_HOST_RULE, type EndpointInput, type IdentityInput, PolicyResolver } from "./resolver.js";
import type { ParsedPolicy } from "./rules.js";
import {
  type EndpointPolicyDelta,
  LOCAL_IDENTITY_SCOPE,
  type PolicyKey,
  type PolicyValue,
  policyKeyString,
} from "./types.js";
import { decide } from "./verdict.js";

const parsed = (object: unknown): ParsedPolicy => {
  const { policy, errors } = parsePolicy(object, { clusterName: "c1" });
  assert.deepEqual(errors.list, []);
  return policy as ParsedPolicy;
};
const cnp = (name: string, spec: unknown, namespace = "demo") =>
  parsed({ apiVersion: "cilium.io/v2", kind: "CiliumNetworkPolicy", metadata: { name, namespace }, spec });
const identity = (
  id: number,
  cluster: string,
  labels: Record<string, string>,
  namespace = "demo",
): IdentityInput => ({
  id,
  cluster,
  labels: [
    ...Object.entries(labels).map(([k, v]) => `k8s:${k}=${v}`),
    `k8s:io.kubernetes.pod.namespace=${namespace}`,
    `k8s:io.cilium.k8s.policy.cluster=${cluster}`,
  ],
});
const endpoint = (
  id: string,
  ident: number,
  labels: Record<string, string>,
  namespace = "demo",
): EndpointInput => ({
  id,
  identity: ident,
  namespace,
  labels: Object.entries(labels).map(([k, v]) => `k8s:${k}=${v}`),
  namedPorts: [{ name: "http", port: 8080, protocol: "TCP" }],
});
const webFromClient = cnp("web", {
  endpointSelector: { matchLabels: { app: "web" } },
  ingress: [
    {
      fromEndpoints: [{ matchLabels: { app: "client" } }],
      toPorts: [{ ports: [{ port: "80", protocol: "TCP" }] }],
    },
  ],
});

/** What the datapath holds after applying deltas in order: checked against endpointPolicy(). */
class AppliedMaps {
  readonly maps = new Map<string, Map<string, [PolicyKey, PolicyValue]>>();
  readonly enforced = new Map<string, { ingress: boolean; egress: boolean }>();
  apply(deltas: EndpointPolicyDelta[]): void {
    for (const delta of deltas) {
      let map = this.maps.get(delta.endpoint);
      if (!map) {
        map = new Map();
        this.maps.set(delta.endpoint, map);
      }
      if (delta.enforced) this.enforced.set(delta.endpoint, delta.enforced);
      for (const key of delta.deletes)
        assert.ok(map.delete(policyKeyString(key)), `delete of absent ${policyKeyString(key)}`);
      for (const [key, value] of delta.upserts) map.set(policyKeyString(key), [key, value]);
    }
  }
  assertMatches(resolver: PolicyResolver, id: string): void {
    const full = resolver.endpointPolicy(id);
    assert.ok(full);
    const sorted = (entries: Array<[PolicyKey, PolicyValue]>) =>
      entries.map(([k, v]) => `${policyKeyString(k)} ${v.verdict} ${v.rule.name}`).sort();
    assert.deepEqual(sorted([...(this.maps.get(id)?.values() ?? [])]), sorted(full.entries));
    assert.deepEqual(this.enforced.get(id), full.enforced);
  }
}

describe("PolicyResolver", () => {
  it("carries enforced in every delta that changes it, with the host's entry", () => {
    const r = new PolicyResolver({ clusterName: "c1" });
    const first = r.upsertEndpoint(endpoint("lxc1", 100, { app: "web" }));
    assert.deepEqual(first, [
      { endpoint: "lxc1", enforced: { ingress: false, egress: false }, upserts: [], deletes: [] },
    ]);
    const on = r.upsertPolicy(webFromClient);
    assert.equal(on.length, 1);
    assert.deepEqual(on[0].enforced, { ingress: true, egress: false });
    assert.deepEqual(on[0].upserts, [
      [
        { direction: "ingress", identity: 1, protocol: 0, port: 0, endPort: 0 },
        { verdict: "allow", rule: ALLOW_FROM_HOST_RULE },
      ],
    ]);
    // a policy change that keeps the endpoint enforced says nothing about enforced
    const more = r.upsertIdentities([identity(65537, "c1", { app: "client" })]);
    assert.equal(more.length, 1);
    assert.equal(more[0].enforced, undefined);
    assert.deepEqual(more[0].upserts[0][0], {
      direction: "ingress",
      identity: 65537,
      protocol: 6,
      port: 80,
      endPort: 80,
    });
    const off = r.deletePolicy({ kind: "CiliumNetworkPolicy", namespace: "demo", name: "web" });
    assert.deepEqual(off[0].enforced, { ingress: false, egress: false });
    assert.equal(off[0].deletes.length, 2);
    assert.equal(off[0].upserts.length, 0);
  });

  it("a remote cluster's 10k identities no selector matches make no delta, quickly", () => {
    const r = new PolicyResolver({ clusterName: "c1" });
    for (let i = 0; i < 100; i++)
      r.upsertEndpoint(endpoint(`lxc${i}`, 100 + i, { app: "web", n: String(i) }));
    r.upsertPolicy(webFromClient);
    const remote = Array.from({ length: 10_000 }, (_, i) =>
      identity((2 << 16) + i + 1, "c2", { app: "client", n: String(i) }),
    );
    const started = performance.now();
    assert.deepEqual(r.upsertIdentities(remote), []);
    assert.deepEqual(r.deleteIdentities(remote.map((i) => i.id)), []);
    const ms = performance.now() - started;
    assert.ok(ms < 1000, `${ms} ms`);
  });

  it("matched identities upsert keys only on the endpoints whose rules select them", () => {
    const r = new PolicyResolver({ clusterName: "c1" });
    const maps = new AppliedMaps();
    maps.apply(r.upsertEndpoint(endpoint("web", 100, { app: "web" })));
    maps.apply(r.upsertEndpoint(endpoint("db", 101, { app: "db" })));
    maps.apply(
      r.upsertPolicy(
        cnp("mesh", {
          endpointSelector: { matchLabels: { app: "web" } },
          ingress: [
            { fromEndpoints: [{ matchLabels: { app: "client", "io.cilium.k8s.policy.cluster": "c2" } }] },
          ],
        }),
      ),
    );
    maps.apply(
      r.upsertPolicy(cnp("db", { endpointSelector: { matchLabels: { app: "db" } }, ingress: [{}] })),
    );
    const deltas = r.upsertIdentities([
      identity((2 << 16) + 5, "c2", { app: "client" }),
      identity((2 << 16) + 6, "c2", { app: "other" }),
    ]);
    assert.deepEqual(
      deltas.map((d) => [d.endpoint, d.upserts.map(([k]) => k.identity), d.deletes.length, d.enforced]),
      [["web", [(2 << 16) + 5], 0, undefined]],
    );
    maps.apply(deltas);
    maps.apply(r.deleteIdentities([(2 << 16) + 5]));
    maps.assertMatches(r, "web");
    maps.assertMatches(r, "db");
    assert.equal(r.endpointPolicy("web")?.entries.length, 1); // the host's entry only
  });

  it("a forged identity claiming the local cluster's label is matched as its real cluster", () => {
    const r = new PolicyResolver({ clusterName: "c1" });
    r.upsertEndpoint(endpoint("web", 100, { app: "web" }));
    r.upsertPolicy(webFromClient);
    const forged = identity(1 << 16, "c2", { app: "client" });
    forged.labels = forged.labels.map((l) => l.replace("cluster=c2", "cluster=c1"));
    assert.deepEqual(r.upsertIdentities([forged]), []);
  });

  it("a forged id in the local range or an id another cluster holds never replaces a local identity", () => {
    const r = new PolicyResolver({ clusterName: "c1", clusterId: 1 });
    r.upsertEndpoint(endpoint("web", 100, { app: "web" }));
    r.upsertPolicy(webFromClient);
    const local = identity(65537, "c1", { app: "client" });
    assert.equal(r.upsertIdentities([local]).length, 1);
    // c2 publishes an identity in c1's range (cluster bits 1) with other labels: ignored
    assert.deepEqual(r.upsertIdentities([identity(65537, "c2", { app: "other" })]), []);
    assert.deepEqual(
      r.upsertIdentities([identity(65538, "c2", { app: "client", "io.cilium.k8s.policy.cluster": "c1" })]),
      [],
    );
    const keys = r.endpointPolicy("web")?.entries.map(([k]) => k.identity);
    assert.deepEqual(keys?.sort(), [1, 65537], "the local client keeps its entry; nothing of c2's");
  });

  it("a disconnected cluster's identities stop matching", () => {
    const r = new PolicyResolver({ clusterName: "c1" });
    r.upsertEndpoint(endpoint("web", 100, { app: "web" }));
    r.upsertPolicy(
      cnp("mesh", {
        endpointSelector: { matchLabels: { app: "web" } },
        ingress: [{ fromEntities: ["mesh"] }],
      }),
    );
    const remote = Array.from({ length: 50 }, (_, i) => identity(2 * 65536 + 1 + i, "c2", { app: "x" }));
    r.upsertIdentities([...remote, identity(65537, "c1", { app: "y" })]);
    const gone = r.deleteClusterIdentities("c2");
    assert.equal(gone[0].deletes.length, 50);
    assert.ok(gone[0].deletes.every((k) => k.identity >> 16 === 2));
    assert.ok(r.endpointPolicy("web")?.entries.some(([k]) => k.identity === 65537));
  });

  it("selectors on the cluster label: NotIn and Exists see identities of any cluster", () => {
    const r = new PolicyResolver({ clusterName: "c1" });
    r.upsertEndpoint(endpoint("web", 100, { app: "web" }));
    r.upsertPolicy(
      cnp("p", {
        endpointSelector: { matchLabels: { app: "web" } },
        ingress: [
          {
            fromEndpoints: [
              {
                matchExpressions: [
                  { key: "io.cilium.k8s.policy.cluster", operator: "NotIn", values: ["c1", "c3"] },
                ],
              },
            ],
          },
        ],
      }),
    );
    const deltas = r.upsertIdentities([
      identity(65537, "c1", {}),
      identity(2 * 65536 + 1, "c2", {}),
      identity(3 * 65536 + 1, "c3", {}),
      identity(4 * 65536 + 1, "c4", {}),
    ]);
    assert.deepEqual(
      deltas[0].upserts.map(([k]) => k.identity),
      [2 * 65536 + 1, 4 * 65536 + 1],
    );
  });

  it("enableDefaultDeny false with deny rules: not enforced, yet the deny entries deny", () => {
    const r = new PolicyResolver({ clusterName: "c1" });
    r.upsertIdentities([identity(65537, "c1", { app: "client" }), identity(65538, "c1", { app: "bad" })]);
    const [delta] = r.upsertEndpoint(endpoint("web", 100, { app: "web" }));
    assert.deepEqual(delta.enforced, { ingress: false, egress: false });
    const [change] = r.upsertPolicy(
      cnp("p", {
        endpointSelector: { matchLabels: { app: "web" } },
        enableDefaultDeny: { ingress: false },
        ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: "bad" } }] }],
      }),
    );
    assert.equal(change.enforced, undefined, "still not enforced: no change to report");
    const policy = r.endpointPolicy("web");
    assert.ok(policy);
    const verdict = (id: number) =>
      decide(policy, { direction: "ingress", identity: id, protocol: 6, port: 80 });
    assert.deepEqual(verdict(65537), { allowed: true, reason: "not-enforced" });
    assert.equal(verdict(65538).allowed, false);
  });

  it("deny wins over allow for the same peer", () => {
    const r = new PolicyResolver({ clusterName: "c1" });
    r.upsertIdentities([identity(65537, "c1", { app: "client" }), identity(65538, "c1", { app: "bad" })]);
    r.upsertEndpoint(endpoint("web", 100, { app: "web" }));
    r.upsertPolicy(
      cnp("p", {
        endpointSelector: { matchLabels: { app: "web" } },
        ingress: [{ fromEntities: ["cluster"] }],
        ingressDeny: [{ fromEndpoints: [{ matchLabels: { app: "bad" } }] }],
      }),
    );
    const policy = r.endpointPolicy("web");
    assert.ok(policy);
    const query = (id: number) =>
      decide(policy, { direction: "ingress", identity: id, protocol: 6, port: 80 });
    assert.equal(query(65537).allowed, true);
    assert.equal(query(65538).allowed, false);
    assert.equal(query(65538).by?.verdict, "deny");
    assert.equal(query(65538).by?.rule.index, 0);
  });

  it("CIDR rules: identities per prefix, except excluded, more specific prefixes included, released with the policy", () => {
    const r = new PolicyResolver({ clusterName: "c1" });
    r.upsertEndpoint(endpoint("client", 100, { app: "client" }));
    r.upsertPolicy(
      cnp("out", {
        endpointSelector: { matchLabels: { app: "client" } },
        egress: [{ toCIDRSet: [{ cidr: "10.0.0.0/8", except: ["10.1.0.0/16"] }] }],
      }),
    );
    r.upsertPolicy(
      cnp("narrow", {
        endpointSelector: { matchLabels: { app: "x" } },
        egress: [{ toCIDR: ["10.2.0.0/16"] }],
      }),
    );
    const cidrs = new Map(r.cidrIdentities().map((c) => [c.prefix, c.identity]));
    assert.deepEqual([...cidrs.keys()].sort(), ["10.0.0.0/8", "10.1.0.0/16", "10.2.0.0/16"]);
    for (const id of cidrs.values()) assert.ok(id > LOCAL_IDENTITY_SCOPE);
    const policy = r.endpointPolicy("client");
    assert.ok(policy);
    const allowed = (ip: string) =>
      decide(policy, { direction: "egress", identity: r.identityOfAddress(ip), protocol: 6, port: 443 })
        .allowed;
    assert.equal(allowed("10.9.9.9"), true);
    assert.equal(allowed("10.2.3.4"), true, "the /16 of another rule lies inside the /8");
    assert.equal(allowed("10.1.3.4"), false, "excepted");
    assert.equal(allowed("192.0.2.1"), false);
    r.deletePolicy({ kind: "CiliumNetworkPolicy", namespace: "demo", name: "out" });
    assert.deepEqual(
      r.cidrIdentities().map((c) => c.prefix),
      ["10.2.0.0/16"],
    );
  });

  it("a policy update changes only the keys that differ; an endpoint's new labels re-resolve it", () => {
    const r = new PolicyResolver({ clusterName: "c1" });
    const maps = new AppliedMaps();
    maps.apply(r.upsertIdentities([identity(65537, "c1", { app: "client" })]));
    maps.apply(r.upsertEndpoint(endpoint("web", 100, { app: "web" })));
    maps.apply(r.upsertPolicy(webFromClient));
    const changed = cnp("web", {
      endpointSelector: { matchLabels: { app: "web" } },
      ingress: [
        {
          fromEndpoints: [{ matchLabels: { app: "client" } }],
          toPorts: [{ ports: [{ port: "80", protocol: "TCP" }] }],
        },
        { toPorts: [{ ports: [{ port: "http", protocol: "TCP" }] }] },
      ],
    });
    const deltas = r.upsertPolicy(changed);
    assert.deepEqual(
      deltas.map((d) => [
        d.endpoint,
        d.upserts.map(([k]) => `${k.identity}/${k.port}`),
        d.deletes.length,
        d.enforced,
      ]),
      [["web", ["0/8080"], 0, undefined]],
    );
    maps.apply(deltas);
    maps.apply(r.upsertEndpoint(endpoint("web", 102, { app: "other" })));
    maps.assertMatches(r, "web");
    assert.deepEqual(r.endpointPolicy("web")?.enforced, { ingress: false, egress: false });
    maps.apply(r.deleteEndpoint("web"));
    assert.equal(maps.maps.get("web")?.size, 0);
  });

  it("random changes: the applied deltas always equal the full state", () => {
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const apps = ["web", "client", "db"];
    const policies = [
      webFromClient,
      cnp("mesh", {
        endpointSelector: {},
        egress: [{ toEntities: ["mesh"], toPorts: [{ ports: [{ port: "53", protocol: "ANY" }] }] }],
        ingressDeny: [
          { fromEndpoints: [{ matchLabels: { app: "db", "io.cilium.k8s.policy.cluster": "c2" } }] },
        ],
      }),
      parsed({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "np", namespace: "demo" },
        spec: {
          podSelector: { matchLabels: { app: "db" } },
          ingress: [{ from: [{ namespaceSelector: {} }], ports: [{ port: "http" }] }],
        },
      }),
    ];
    const r = new PolicyResolver({ clusterName: "c1" });
    const maps = new AppliedMaps();
    for (let step = 0; step < 400; step++) {
      const which = random(6);
      const cluster = random(2) ? "c1" : "c2";
      if (which === 0) maps.apply(r.upsertPolicy(policies[random(policies.length)]));
      else if (which === 1) {
        const p = policies[random(policies.length)];
        maps.apply(r.deletePolicy(p));
      } else if (which === 2)
        maps.apply(
          r.upsertIdentities([
            identity((cluster === "c1" ? 1 : 2) * 65536 + random(20), cluster, { app: apps[random(3)] }),
          ]),
        );
      else if (which === 3) maps.apply(r.deleteIdentities([(cluster === "c1" ? 1 : 2) * 65536 + random(20)]));
      else if (which === 4)
        maps.apply(r.upsertEndpoint(endpoint(`lxc${random(5)}`, 100, { app: apps[random(3)] })));
      else maps.apply(r.deleteEndpoint(`lxc${random(5)}`));
      for (let e = 0; e < 5; e++) if (r.endpointPolicy(`lxc${e}`)) maps.assertMatches(r, `lxc${e}`);
    }
  });
});
