import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AllocationError, allocateNodePort, parsePortRange, ServiceIpRange } from "./ipalloc.js";

describe("service IP allocation", () => {
  const range = new ServiceIpRange("10.96.0.0/28");

  it("hands out unique addresses inside the range until it is full", () => {
    const used = new Set<string>();
    for (let i = 0; i < 14; i++) {
      const ip = range.allocate(used);
      assert.ok(range.contains(ip), ip);
      assert.ok(!used.has(ip));
      used.add(ip);
    }
    assert.ok(!used.has("10.96.0.0") && !used.has("10.96.0.15"), "network and broadcast are never used");
    assert.throws(() => range.allocate(used), AllocationError);
  });

  it("honours a free requested address and refuses taken or outside ones", () => {
    assert.equal(range.allocate(new Set(), "10.96.0.5"), "10.96.0.5");
    assert.throws(() => range.allocate(new Set(["10.96.0.5"]), "10.96.0.5"), /already allocated/);
    assert.throws(() => range.allocate(new Set(), "10.97.0.5"), /not in the valid range/);
    assert.equal(range.apiServerServiceIp, "10.96.0.1");
  });
});

describe("node port allocation", () => {
  it("allocates inside the range and honours requests", () => {
    const r = parsePortRange("30000-30002");
    const used = new Set<number>();
    for (let i = 0; i < 3; i++) used.add(allocateNodePort(r, used));
    assert.deepEqual([...used].sort(), [30000, 30001, 30002]);
    assert.throws(() => allocateNodePort(r, used), AllocationError);
    assert.equal(allocateNodePort(r, new Set(), 30001), 30001);
    assert.throws(() => allocateNodePort(r, new Set(), 40000), /valid range/);
    assert.throws(() => parsePortRange("3-1"));
  });
});
