import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { LabConfigError } from "./config-error.js";
import { generatedClusters } from "./generated-clusters.js";
import { parseKindConfig } from "./kind-config.js";
import { planLab } from "./plan.js";

// dist/lab/ → the checkout's kind-configs/
const DEMO_CONFIG = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "kind-configs",
  "cluster1.yaml",
);
const noMesh = { clusterIds: new Map<string, number>() };

describe("generated clusters (lab up --clusters N)", () => {
  it("plans ten one-node clusters with their own subnets and ids 1..10", () => {
    const plan = planLab("ten", generatedClusters(10), noMesh);
    assert.deepEqual(
      plan.clusters.map((c) => [c.name, c.id, c.nodes.map((n) => `${n.name} ${n.role} ${n.ip}`)]),
      Array.from({ length: 10 }, (_, i) => [
        `cluster${i + 1}`,
        i + 1,
        [`cluster${i + 1}-control-plane control-plane 172.30.0.${i + 2}`],
      ]),
    );
    assert.equal(new Set(plan.blackholes.map((b) => b.prefix)).size, 20);
    assert.deepEqual(plan.clusters[9].podSubnets, ["10.10.0.0/16"]);
    assert.deepEqual(plan.clusters[9].serviceSubnets, ["10.110.0.0/16"]);
  });

  it("is the demo configs' layout without their workers", () => {
    const [generated] = generatedClusters(1);
    const demo = parseKindConfig(DEMO_CONFIG, readFileSync(DEMO_CONFIG, "utf8"));
    assert.deepEqual({ ...generated, file: "", nodes: [] }, { ...demo, file: "", nodes: [] });
    assert.deepEqual(
      generated.nodes.map((n) => n.role),
      ["control-plane"],
    );
  });

  it("refuses a count it cannot lay out, naming the flag", () => {
    for (const bad of [0, 100, 2.5, Number.NaN]) {
      assert.throws(
        () => generatedClusters(bad),
        (error: unknown) =>
          error instanceof LabConfigError && error.source === "--clusters" && /1\.\.99/.test(error.message),
      );
    }
  });
});
