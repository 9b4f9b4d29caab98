import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1ConfigMap } from "@kubernetes/client-node";
import { localCluster } from "./local-cluster.js";

const cache = (data?: Record<string, string>) => ({
  get: (): V1ConfigMap | undefined => (data ? { data } : undefined),
});
const flags = { clusterName: "c1", clusterId: 1 };

describe("our own cluster for the remote-cluster manager", () => {
  it("takes name and id from the flags and 255 without a clustermesh-config", () => {
    assert.deepEqual(localCluster(flags, cache()), {
      local: { name: "c1", id: 1, maxConnectedClusters: 255 },
      problems: [],
    });
  });

  it("takes max-connected-clusters 511 from the ConfigMap; a different name there is an error, the flags win", () => {
    const { local, problems } = localCluster(
      flags,
      cache({ "cluster-name": "other", "cluster-id": "300", "max-connected-clusters": "511" }),
    );
    assert.deepEqual(local, { name: "c1", id: 1, maxConnectedClusters: 511 });
    assert.equal(problems.length, 1);
    assert.equal(problems[0].level, "error");
  });

  it("ignores an invalid ConfigMap with a warning", () => {
    const { local, problems } = localCluster(flags, cache({ "cluster-id": "1" }));
    assert.equal(local.maxConnectedClusters, 255);
    assert.equal(problems[0].level, "warn");
    assert.match(String(problems[0].details.err), /cluster-name is missing/);
  });
});
