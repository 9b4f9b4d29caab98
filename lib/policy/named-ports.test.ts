// Egress rules' named ports against the cluster's pods' container ports: every number of the name and
// protocol, an unresolved name kept (it matches nothing, never every port), warnings only for those.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hasEgressNamedPorts, NamedPortIndex, resolveEgressNamedPorts } from "./named-ports.js";
import { parsePolicy } from "./parse.js";

const policy = (ports: unknown[], direction: "ingress" | "egress" = "egress") => {
  const result = parsePolicy(
    {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: { name: "p", namespace: "demo" },
      spec: {
        podSelector: {},
        policyTypes: [direction === "egress" ? "Egress" : "Ingress"],
        [direction]: [{ ports }],
      },
    },
    { clusterName: "c1" },
  );
  assert.ok(result.policy, JSON.stringify(result.errors.list));
  return result.policy;
};

describe("egress named ports", () => {
  it("resolve to every number pods give the name over that protocol; the index ignores bad ports", () => {
    const index = NamedPortIndex.of([
      { name: "http", port: 8080, protocol: "TCP" },
      { name: "http", port: 80, protocol: "" },
      { name: "http", port: 8080, protocol: "TCP" },
      { name: "http", port: 5353, protocol: "UDP" },
      { name: "http", port: 70000, protocol: "TCP" },
      { name: "dns", port: 53, protocol: "UDP" },
    ]);
    const parsed = policy([{ port: "http" }, { port: 443 }]);
    assert.equal(hasEgressNamedPorts(parsed), true);
    assert.equal(parsed.warnings.length, 1, "the parser cannot know: it warns");
    const resolved = resolveEgressNamedPorts(parsed, index);
    assert.deepEqual(resolved.subjects[0].rules[0].ports, [
      { protocol: 6, port: 80, endPort: 80 },
      { protocol: 6, port: 8080, endPort: 8080 },
      { protocol: 6, port: 443, endPort: 443 },
    ]);
    assert.deepEqual(resolved.warnings, []);
  });

  it("a name no pod has stays a name (matches nothing) and keeps its warning", () => {
    const parsed = policy([{ port: "metrics" }]);
    const resolved = resolveEgressNamedPorts(parsed, NamedPortIndex.of([]));
    assert.deepEqual(resolved.subjects[0].rules[0].ports, [{ protocol: 6, name: "metrics" }]);
    assert.equal(resolved.warnings.length, 1);
    assert.match(resolved.warnings[0].message, /named port "metrics" in an egress rule/);
  });

  it("ingress named ports are not the index's: they resolve per endpoint", () => {
    const parsed = policy([{ port: "http" }], "ingress");
    assert.equal(hasEgressNamedPorts(parsed), false);
    const resolved = resolveEgressNamedPorts(
      parsed,
      NamedPortIndex.of([{ name: "http", port: 1, protocol: "TCP" }]),
    );
    assert.deepEqual(resolved.subjects[0].rules[0].ports, [{ protocol: 6, name: "http" }]);
  });

  it("the signature changes with the ports, not with their order", () => {
    const a = NamedPortIndex.of([
      { name: "a", port: 1, protocol: "TCP" },
      { name: "b", port: 2, protocol: "TCP" },
    ]);
    const b = NamedPortIndex.of([
      { name: "b", port: 2, protocol: "TCP" },
      { name: "a", port: 1, protocol: "TCP" },
    ]);
    assert.equal(a.signature, b.signature);
    assert.notEqual(a.signature, NamedPortIndex.of([{ name: "a", port: 3, protocol: "TCP" }]).signature);
  });
});
