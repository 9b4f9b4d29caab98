import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "./objects.js";
import type { ResourceType } from "./registry.js";
import { age, toTable, wantsTable } from "./table.js";

const pods = { group: "", version: "v1", resource: "pods" } as ResourceType;

describe("server-side printing", () => {
  it("recognises kubectl's Table Accept header", () => {
    assert.ok(
      wantsTable(
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
      ),
    );
    assert.ok(!wantsTable("application/json"));
    assert.ok(!wantsTable(undefined));
  });

  it("prints pods like kube-apiserver: ready, status, restarts, wide columns", () => {
    const pod: KubeObject = {
      metadata: {
        name: "echo-1",
        namespace: "demo",
        creationTimestamp: new Date(Date.now() - 90_000).toISOString(),
      },
      spec: { nodeName: "c1-worker", containers: [{ name: "echo" }] },
      status: {
        phase: "Running",
        podIP: "10.1.0.5",
        containerStatuses: [{ ready: true, restartCount: 2, state: { running: {} } }],
      },
    };
    const table = toTable(pods, [pod], "42") as {
      columnDefinitions: { name: string; priority: number }[];
      rows: { cells: unknown[]; object: { metadata: { name: string } } }[];
      metadata: { resourceVersion: string };
    };
    assert.deepEqual(
      table.columnDefinitions.map((c) => c.name),
      ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node"],
    );
    assert.deepEqual(
      table.columnDefinitions.filter((c) => c.priority === 1).map((c) => c.name),
      ["IP", "Node"],
    );
    assert.deepEqual(table.rows[0].cells, ["echo-1", "1/1", "Running", 2, "90s", "10.1.0.5", "c1-worker"]);
    assert.equal(table.rows[0].object.metadata.name, "echo-1");
    assert.equal(table.metadata.resourceVersion, "42");
    const terminating = toTable(pods, [
      { ...pod, metadata: { ...pod.metadata, deletionTimestamp: "x" } },
    ]) as { rows: { cells: unknown[] }[] };
    assert.equal(terminating.rows[0].cells[2], "Terminating");
  });

  it("formats ages as kubectl does", () => {
    const now = Date.parse("2026-01-01T12:00:00Z");
    assert.equal(age("2026-01-01T11:59:30Z", now), "30s");
    assert.equal(age("2026-01-01T11:55:30Z", now), "4m30s");
    assert.equal(age("2026-01-01T10:00:00Z", now), "120m");
    assert.equal(age("2025-12-30T12:00:00Z", now), "2d");
  });
});
