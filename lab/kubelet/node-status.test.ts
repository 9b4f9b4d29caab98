import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type NodeIdentity, nodeStatus, nodeStatusChanged } from "./node-status.js";

const identity: NodeIdentity = {
  name: "n1",
  ips: ["172.30.0.3"],
  port: 10250,
  controlPlane: false,
  taints: [],
  labels: {},
};

describe("nodeStatusChanged", () => {
  it("ignores heartbeat times and sees condition and address changes", () => {
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
