import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { cidrsOverlap, parseCidr } from "../lib/cidr.js";
import { LabConfigError } from "./config-error.js";
import { generatedLab } from "./generated-clusters.js";
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
const allFree = () => true;
/** A host with another lab's routes on it (the demo lab: 10.1-2/16, 10.101-102/16, 172.30.0.0/24). */
const routed = ["10.1.0.0/16", "10.2.0.0/16", "10.101.0.0/16", "10.102.0.0/16", "172.30.0.0/24"];
const besideDemoLab = (cidr: string) => !routed.some((r) => cidrsOverlap(parseCidr(r), parseCidr(cidr)));

describe("generated clusters (lab up --clusters N)", () => {
  it("plans ten one-node clusters with their own subnets and ids 1..10", () => {
    const { clusters, mesh } = generatedLab(10, noMesh, allFree);
    const plan = planLab("ten", clusters, mesh);
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

  it("comes up beside another lab: skips the subnets the host routes", () => {
    const { clusters, mesh } = generatedLab(10, noMesh, besideDemoLab);
    const plan = planLab("ten", clusters, mesh);
    assert.equal(plan.bridge.subnet, "172.30.1.0/24");
    assert.deepEqual(
      plan.clusters.map((c) => `${c.name}=${c.podSubnets[0]},${c.serviceSubnets[0]}`).slice(0, 2),
      ["cluster1=10.3.0.0/16,10.103.0.0/16", "cluster2=10.4.0.0/16,10.104.0.0/16"],
    );
    assert.ok(plan.blackholes.every((b) => besideDemoLab(b.prefix)));
    // a node subnet from --mesh is kept as given
    const given = generatedLab(2, { ...noMesh, nodeSubnet: parseCidr("172.31.5.0/24") }, besideDemoLab);
    assert.equal(given.mesh.nodeSubnet?.prefixLength, 24);
    assert.equal(planLab("ten", given.clusters, given.mesh).bridge.subnet, "172.31.5.0/24");
  });

  it("is the demo configs' layout without their workers", () => {
    const [generated] = generatedLab(1, noMesh, allFree).clusters;
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
        () => generatedLab(bad, noMesh, allFree),
        (error: unknown) =>
          error instanceof LabConfigError && error.source === "--clusters" && /1\.\.99/.test(error.message),
      );
    }
    assert.throws(
      () => generatedLab(98, noMesh, besideDemoLab),
      (error: unknown) =>
        error instanceof LabConfigError &&
        /only 97 of .* are free of host routes, 98 needed/.test(error.message),
    );
  });
});
