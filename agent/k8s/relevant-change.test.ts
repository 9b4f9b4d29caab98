import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Node } from "@kubernetes/client-node";
import { nodeAddressing } from "./caches.js";
import { onProjectionChange } from "./relevant-change.js";

const node = (ip: string, heartbeat: string): V1Node => ({
  metadata: { name: "n1" },
  spec: { podCIDRs: ["10.1.0.0/24"] },
  status: {
    addresses: [{ type: "InternalIP", address: ip }],
    conditions: [{ type: "Ready", status: "True", lastHeartbeatTime: new Date(heartbeat) }],
  },
});

describe("onProjectionChange", () => {
  it("signals adds, changes of the projection and deletes, not heartbeat-only updates", () => {
    let signals = 0;
    const onChange = onProjectionChange<V1Node>(nodeAddressing, () => signals++);
    onChange(node("172.30.0.3", "2026-01-01T00:00:00Z"), "add");
    assert.equal(signals, 1);
    onChange(node("172.30.0.3", "2026-01-01T00:00:10Z"), "update");
    onChange(node("172.30.0.3", "2026-01-01T00:00:20Z"), "update");
    assert.equal(signals, 1, "heartbeat times are not read by the datapath");
    onChange(node("172.30.0.9", "2026-01-01T00:00:30Z"), "update");
    assert.equal(signals, 2, "a new InternalIP is");
    onChange(node("172.30.0.9", "2026-01-01T00:00:30Z"), "delete");
    assert.equal(signals, 3);
    onChange(node("172.30.0.9", "2026-01-01T00:00:40Z"), "add");
    assert.equal(signals, 4, "a node deleted and added again is news even with the same projection");
  });
});
