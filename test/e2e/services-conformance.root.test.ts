/**
 * Kubernetes' own [sig-network] Services [Conformance] tests (the e2e binary of the control plane's
 * release, toolchain/kubernetes-e2e) against a fresh one-worker lab cluster: a subset that runs in
 * a few minutes, chosen to cover our kube-proxy replacement — ClusterIP and NodePort forwarding,
 * multiport and same-port/two-protocol services, type changes, ClientIP session affinity — and
 * the Service/Endpoints API paths the agent watches. The whole group runs with
 * `node dist/test/e2e/run.js` (README "Kubernetes' e2e tests"). Every selected spec must pass.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { type LabFixture, labFixture, labUpArgs, meshctl } from "../../testing/lab-fixture.js";
import { runE2e } from "./runner.js";

/** Spec texts after "[sig-network] Services " (each ends in [Conformance]). */
export const SERVICES_SUBSET = [
  "should provide secure master service",
  "should serve a basic endpoint from pods",
  "should serve multiport endpoints from pods",
  "should be able to create a functioning NodePort service",
  "should be able to change the type from ExternalName to ClusterIP",
  "should be able to change the type from ClusterIP to ExternalName",
  "should have session affinity work for service with type clusterIP",
  "should have session affinity work for NodePort service",
  "should find a service from listing all namespaces",
  "should test the lifecycle of an Endpoint",
  "should complete a service status lifecycle",
  "should delete a collection of services",
  "should serve endpoints on same port and different protocols",
];

const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("Kubernetes e2e: [sig-network] Services [Conformance] subset (root: lab + e2e binary)", () => {
  let fixture: LabFixture;

  after(() => {
    if (fixture && !process.env.KEEP_LAB) {
      meshctl(["lab", "down", "--name", fixture.name], fixture.env);
      fixture.cleanup();
    }
  });

  it(`passes all ${SERVICES_SUBSET.length} selected specs`, async () => {
    fixture = await labFixture([{ workers: 1 }]);
    const up = meshctl(labUpArgs(fixture), fixture.env);
    assert.equal(up.status, 0, up.stderr);
    const result = await runE2e({
      lab: fixture.name,
      cluster: "c1",
      focus: `\\[sig-network\\] Services (${SERVICES_SUBSET.map(literal).join("|")}) .*\\[Conformance\\]`,
      reportDir: mkdtempSync(join(tmpdir(), "e2e-services-")),
      timeoutMinutes: 12,
      progress: (line) => process.stderr.write(`${line}\n`),
    });
    const failed = result.specs.filter((spec) => spec.state !== "passed");
    assert.deepEqual(
      failed.map((spec) => `${spec.state}: ${spec.name}: ${spec.message ?? ""}`),
      [],
      `full output: ${result.log}`,
    );
    assert.equal(result.specs.length, SERVICES_SUBSET.length, "every selected spec ran");
  });
});
