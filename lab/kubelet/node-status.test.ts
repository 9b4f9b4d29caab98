import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  CONTROL_PLANE_LABEL,
  type NodeIdentity,
  nodeStatus,
  nodeStatusChanged,
  nodeTaints,
} from "./node-status.js";

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

describe("nodeStatusChanged", () => {
  it("ignores heartbeat times and sees condition and address changes", () => {
    const identity = node({});
    const ready = { ready: true, message: "" };
    const first = nodeStatus(identity, ready, undefined, new Date("2026-01-01T00:00:00Z"));
    const later = nodeStatus(identity, ready, first, new Date("2026-01-01T00:00:10Z"));
    assert.equal(nodeStatusChanged(first, later), false);
    assert.equal(nodeStatusChanged(undefined, later), true);
    const notReady = nodeStatus(identity, { ready: false, message: "no cni" }, first);
    assert.equal(nodeStatusChanged(first, notReady), true);
    const moved = { ...later, addresses: [{ type: "InternalIP", address: "172.30.0.9" }] };
    assert.equal(nodeStatusChanged(first, moved), true);
  });
});
