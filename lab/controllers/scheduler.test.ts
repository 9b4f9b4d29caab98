import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Node, V1Pod } from "@kubernetes/client-node";
import { nodeRejection, schedule, tolerates } from "./scheduler.js";

function node(
  name: string,
  options: { ready?: boolean; labels?: Record<string, string>; controlPlane?: boolean } = {},
): V1Node {
  return {
    metadata: { name, labels: { "kubernetes.io/hostname": name, ...(options.labels ?? {}) } },
    spec: options.controlPlane
      ? { taints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }] }
      : {},
    status: { conditions: [{ type: "Ready", status: options.ready === false ? "False" : "True" }] },
  };
}

function pod(name: string, spec: Partial<NonNullable<V1Pod["spec"]>> = {}): V1Pod {
  return {
    metadata: {
      name,
      namespace: "default",
      creationTimestamp: new Date(`2024-01-01T00:00:0${name.length % 10}Z`),
    },
    spec: { containers: [{ name: "c" }], ...spec },
  };
}

describe("scheduler", () => {
  it("spreads pods across ready, untainted nodes", () => {
    const plan = schedule(
      [pod("a"), pod("b"), pod("c"), pod("d")],
      [node("cp", { controlPlane: true }), node("w1"), node("w2"), node("w3", { ready: false })],
    );
    const perNode = new Map<string, number>();
    for (const b of plan.bindings) perNode.set(b.node, (perNode.get(b.node) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(perNode), { w1: 2, w2: 2 });
    assert.equal(plan.unschedulable.length, 0);
  });

  it("counts pods already bound when spreading", () => {
    const plan = schedule(
      [pod("x", { nodeName: "w1" }), pod("y", { nodeName: "w1" }), pod("new")],
      [node("w1"), node("w2")],
    );
    assert.deepEqual(plan.bindings, [{ namespace: "default", pod: "new", node: "w2" }]);
  });

  it("honours nodeSelector and reports why nothing fits", () => {
    const nodes = [node("w1", { labels: { zone: "a" } }), node("w2", { labels: { zone: "b" } })];
    const plan = schedule(
      [pod("p", { nodeSelector: { zone: "b" } }), pod("q", { nodeSelector: { zone: "c" } })],
      nodes,
    );
    assert.deepEqual(plan.bindings, [{ namespace: "default", pod: "p", node: "w2" }]);
    assert.equal(plan.unschedulable.length, 1);
    assert.match(plan.unschedulable[0].message, /0\/2 nodes are available: 2 node\(s\) didn't match/);
  });

  it("places a pod that tolerates the control-plane taint on the control plane", () => {
    const tolerant = pod("t", {
      tolerations: [
        { key: "node-role.kubernetes.io/control-plane", operator: "Exists", effect: "NoSchedule" },
      ],
      nodeSelector: { "kubernetes.io/hostname": "cp" },
    });
    const plan = schedule([tolerant], [node("cp", { controlPlane: true }), node("w1")]);
    assert.deepEqual(plan.bindings, [{ namespace: "default", pod: "t", node: "cp" }]);
    assert.match(nodeRejection(pod("u"), node("cp", { controlPlane: true })) ?? "", /untolerated taint/);
  });

  it("matches tolerations like the upstream helper", () => {
    const taint = { key: "k", value: "v", effect: "NoSchedule" };
    assert.ok(tolerates([{ operator: "Exists" }], taint));
    assert.ok(tolerates([{ key: "k", value: "v" }], taint));
    assert.ok(!tolerates([{ key: "k", value: "w" }], taint));
    assert.ok(!tolerates([{ key: "k", operator: "Exists", effect: "NoExecute" }], taint));
  });

  it("skips bound, terminating and other schedulers' pods", () => {
    const plan = schedule(
      [
        pod("bound", { nodeName: "w1" }),
        { ...pod("gone"), metadata: { ...pod("gone").metadata, deletionTimestamp: new Date() } },
        pod("other", { schedulerName: "someone-else" }),
      ],
      [node("w1")],
    );
    assert.deepEqual(plan, { bindings: [], unschedulable: [] });
  });

  it("honours required node affinity", () => {
    const affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: "zone", operator: "NotIn", values: ["a"] }] }],
        },
      },
    };
    const plan = schedule([pod("p", { affinity })], [node("w1", { labels: { zone: "a" } }), node("w2")]);
    assert.equal(plan.bindings[0]?.node, "w2");
  });
});
