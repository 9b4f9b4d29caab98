import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import {
  orphanedPods,
  POD_TEMPLATE_HASH_LABEL,
  planDeployment,
  podFromTemplate,
  templateHash,
} from "./deployments.js";

function deployment(
  replicas: number,
  image = "clustermesh/echo",
  strategy?: NonNullable<V1Deployment["spec"]>["strategy"],
): V1Deployment {
  return {
    metadata: { name: "web", namespace: "demo", uid: "dep-uid", generation: 3 },
    spec: {
      replicas,
      selector: { matchLabels: { app: "web" } },
      template: { metadata: { labels: { app: "web" } }, spec: { containers: [{ name: "web", image }] } },
      ...(strategy ? { strategy } : {}),
    },
  };
}

let counter = 0;
function podOf(d: V1Deployment, ready: boolean): V1Pod {
  const pod = podFromTemplate(d, `p${counter++}`);
  pod.metadata = { ...pod.metadata, creationTimestamp: new Date(Date.UTC(2024, 0, 1, 0, 0, counter)) };
  pod.status = { phase: "Running", conditions: [{ type: "Ready", status: ready ? "True" : "False" }] };
  return pod;
}

describe("Deployment controller", () => {
  it("creates missing replicas and reports status", () => {
    const d = deployment(3);
    const plan = planDeployment(d, [podOf(d, true)]);
    assert.equal(plan.create, 2);
    assert.deepEqual(plan.delete, []);
    assert.equal(plan.status.replicas, 1);
    assert.equal(plan.status.readyReplicas, 1);
    assert.equal(plan.status.updatedReplicas, 1);
    assert.equal(plan.status.observedGeneration, 3);
  });

  it("counts pending creations so it does not create twice", () => {
    const d = deployment(3);
    assert.equal(planDeployment(d, [podOf(d, true)], 2).create, 0);
  });

  it("scales down, not-ready pods first", () => {
    const d = deployment(1);
    const ready = podOf(d, true);
    const notReady = podOf(d, false);
    const plan = planDeployment(d, [ready, notReady, podOf(d, true)]);
    assert.equal(plan.create, 0);
    assert.equal(plan.delete.length, 2);
    assert.ok(plan.delete.includes(notReady.metadata?.name ?? ""));
  });

  it("labels pods with the template hash and owns them", () => {
    const d = deployment(1);
    const pod = podFromTemplate(d, "abcde");
    assert.equal(pod.metadata?.labels?.[POD_TEMPLATE_HASH_LABEL], templateHash(d));
    assert.equal(pod.metadata?.labels?.app, "web");
    assert.deepEqual(pod.metadata?.ownerReferences?.[0].uid, "dep-uid");
    assert.notEqual(templateHash(d), templateHash(deployment(1, "clustermesh/client")));
    assert.equal(templateHash(d), templateHash(deployment(5)), "replicas are not part of the template");
  });

  it("rolls out new pods before removing ready old ones", () => {
    const old = deployment(2);
    const oldPods = [podOf(old, true), podOf(old, true)];
    const updated = deployment(2, "clustermesh/client");
    // Step 1: surge one new pod, keep both old pods (maxUnavailable 25% of 2 = 0).
    let plan = planDeployment(updated, oldPods);
    assert.equal(plan.create, 1);
    assert.deepEqual(plan.delete, []);
    // Step 2: the new pod exists but is not ready: nothing else happens.
    const new1 = podOf(updated, false);
    plan = planDeployment(updated, [...oldPods, new1]);
    assert.equal(plan.create, 0);
    assert.deepEqual(plan.delete, []);
    // Step 3: the new pod is ready: one old pod goes.
    new1.status = { phase: "Running", conditions: [{ type: "Ready", status: "True" }] };
    plan = planDeployment(updated, [...oldPods, new1]);
    assert.equal(plan.delete.length, 1);
    assert.equal(plan.status.updatedReplicas, 1);
  });

  it("Recreate removes old pods before creating new ones", () => {
    const old = deployment(2);
    const updated = deployment(2, "clustermesh/client", { type: "Recreate" });
    const plan = planDeployment(updated, [podOf(old, true), podOf(old, true)]);
    assert.equal(plan.create, 0);
    assert.equal(plan.delete.length, 2);
    assert.equal(planDeployment(updated, []).create, 2);
  });

  it("finds pods whose deployment is gone", () => {
    const d = deployment(1);
    const pod = podOf(d, true);
    assert.deepEqual(orphanedPods([pod], [d]), []);
    assert.deepEqual(orphanedPods([pod], []), [pod]);
    assert.deepEqual(orphanedPods([{ metadata: { name: "bare" } }], []), []);
  });
});
