import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MeshIdentity } from "../../lib/api/crds.js";
import { silentLogger } from "../../lib/log.js";
import type { CreateOutcome, MeshIdentityStore } from "../k8s/mesh-api.js";
import { IdentityAllocator } from "./allocator.js";
import {
  CLUSTER_LABEL,
  candidateIdentity,
  checkIdentityKey,
  clusterIdentityRange,
  clusterIdOf,
  IdentityKeyTooLongError,
  identityKey,
  securityLabels,
} from "./labels.js";

/** An API server's create-if-absent, with a delay so concurrent allocators really interleave. */
class FakeStore implements MeshIdentityStore {
  readonly objects = new Map<string, MeshIdentity>();
  async create(identity: MeshIdentity): Promise<CreateOutcome> {
    await new Promise((resolve) => setImmediate(resolve));
    if (this.objects.has(identity.metadata.name)) return "exists";
    this.objects.set(identity.metadata.name, identity);
    return "created";
  }
  async get(name: string) {
    return this.objects.get(name);
  }
}

const noneKnown = { list: () => [], get: () => undefined };

describe("security labels and identities", () => {
  it("builds Cilium's k8s: labels, without per-rollout labels", () => {
    const labels = securityLabels({
      namespace: "demo",
      podLabels: { app: "echo", "pod-template-hash": "abc" },
      namespaceLabels: { team: "a" },
      serviceAccount: "sa1",
      clusterName: "c1",
    });
    assert.deepEqual(
      [...labels],
      [
        ["k8s:app", "echo"],
        ["k8s:io.cilium.k8s.namespace.labels.team", "a"],
        [`k8s:${CLUSTER_LABEL}`, "c1"],
        ["k8s:io.cilium.k8s.policy.serviceaccount", "sa1"],
        ["k8s:io.kubernetes.pod.namespace", "demo"],
      ],
    );
    assert.match(identityKey(labels), /^k8s:app=echo;k8s:io\.cilium/);
  });

  it("keeps identities in the cluster's range (cluster id in bits 16-23)", () => {
    assert.deepEqual(clusterIdentityRange(1), { first: 65536, last: 131071 });
    for (let attempt = 0; attempt < 1000; attempt += 97) {
      const id = candidateIdentity("k8s:app=x;", 3, attempt);
      assert.equal(clusterIdOf(id), 3);
      assert.ok(id > 3 << 16 && id <= (4 << 16) - 1);
    }
    assert.equal(candidateIdentity("k", 5, 0), candidateIdentity("k", 5, 0), "deterministic");
  });

  it("refuses label sets whose key is too long", () => {
    assert.throws(() => checkIdentityKey("x".repeat(5000)), IdentityKeyTooLongError);
  });

  it("concurrent agents converge on one id per label set, collisions move on", async () => {
    const store = new FakeStore();
    const labelsA = securityLabels({ namespace: "d", podLabels: { app: "a" }, clusterName: "c1" });
    const labelsB = securityLabels({ namespace: "d", podLabels: { app: "b" }, clusterName: "c1" });
    // someone else already holds A's first candidate with different labels
    const taken = String(candidateIdentity(identityKey(labelsA), 2, 0));
    store.objects.set(taken, {
      apiVersion: "clustermesh.io/v1alpha1",
      kind: "MeshIdentity",
      metadata: { name: taken },
      "security-labels": { "k8s:other": "x" },
    });
    const agents = Array.from(
      { length: 5 },
      () => new IdentityAllocator(store, noneKnown, 2, silentLogger()),
    );
    const ids = await Promise.all(
      agents.flatMap((agent) => [agent.resolve(labelsA), agent.resolve(labelsB)]),
    );
    const forA = new Set(ids.filter((_, i) => i % 2 === 0));
    const forB = new Set(ids.filter((_, i) => i % 2 === 1));
    assert.equal(forA.size, 1);
    assert.equal(forB.size, 1);
    assert.notEqual([...forA][0], Number(taken));
    assert.notEqual([...forA][0], [...forB][0]);
    assert.equal(store.objects.size, 3);
  });
});
