import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CONTROL_PLANE_LABEL, type NodeIdentity, nodeTaints } from "./node-status.js";

const node = (extra: Partial<NodeIdentity>): NodeIdentity => ({
  name: "n",
  ips: ["172.30.0.2"],
  port: 10250,
  controlPlane: false,
  taints: [],
  labels: {},
  ...extra,
});

describe("node taints", () => {
  it("taints a control plane NoSchedule unless it is the cluster's only node (kind)", () => {
    assert.deepEqual(nodeTaints(node({ controlPlane: true })), [
      { key: CONTROL_PLANE_LABEL, effect: "NoSchedule" },
    ]);
    assert.deepEqual(nodeTaints(node({ controlPlane: true, schedulableControlPlane: true })), []);
    assert.deepEqual(nodeTaints(node({})), []);
  });
});
