import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { imageLoadHint } from "./install.js";
import {
  imagePullFailures,
  isReady,
  type MeshWorkloadStatus,
  type WorkloadCounts,
} from "./workload-status.js";

const counts = (over: Partial<WorkloadCounts>): WorkloadCounts => ({
  name: "clustermesh-agent",
  kind: "DaemonSet",
  present: true,
  desired: 2,
  ready: 2,
  available: 2,
  updated: 2,
  image: "docker.io/clustermesh/clustermesh:0.1.0",
  ...over,
});

describe("mesh workload status", () => {
  it("is ready only when every desired pod is ready, available and up to date", () => {
    assert.equal(isReady(counts({})), true);
    assert.equal(isReady(counts({ ready: 1 })), false);
    assert.equal(isReady(counts({ updated: 1 })), false);
    assert.equal(isReady(counts({ desired: 0, ready: 0, available: 0, updated: 0 })), false);
    assert.equal(isReady(counts({ present: false })), false);
  });

  it("finds pods that cannot pull their image, init containers included", () => {
    const status: MeshWorkloadStatus = {
      agent: counts({ ready: 0 }),
      apiserver: counts({ kind: "Deployment", name: "clustermesh-apiserver", desired: 1, ready: 0 }),
      agentPods: [
        { name: "a1", node: "c1-worker", ready: false, waiting: "ErrImagePull", image: "x:1" },
        { name: "a2", node: "c1-control-plane", ready: false, waiting: "PodInitializing" },
      ],
      apiserverPods: [{ name: "s1", ready: false, waiting: "ImagePullBackOff", image: "x:1" }],
    };
    assert.deepEqual(
      imagePullFailures(status).map((p) => p.name),
      ["a1", "s1"],
    );
  });

  it("names the kind load command with the kind cluster of a kind context", () => {
    assert.match(
      imageLoadHint("docker.io/clustermesh/clustermesh:0.1.0", "kind-cluster1"),
      /kind load image-archive <archive from npm run image> --name cluster1/,
    );
    assert.match(imageLoadHint("x:1", "prod"), /--name <kind cluster>/);
  });
});
