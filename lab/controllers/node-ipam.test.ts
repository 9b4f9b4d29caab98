import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allocateNodeCidrs, ipamConfig } from "./node-ipam.js";

describe("node IPAM", () => {
  const config = ipamConfig("10.244.0.0/16", 24);

  it("gives each node a distinct /24 in order", () => {
    const result = allocateNodeCidrs(
      [
        { name: "a", podCIDRs: [] },
        { name: "b", podCIDRs: [] },
      ],
      config,
    );
    assert.deepEqual(Object.fromEntries(result), { a: ["10.244.0.0/24"], b: ["10.244.1.0/24"] });
  });

  it("never hands out a CIDR a node already has (restart safety)", () => {
    const result = allocateNodeCidrs(
      [
        { name: "old", podCIDRs: ["10.244.0.0/24"] },
        { name: "older", podCIDRs: ["10.244.2.0/24"] },
        { name: "new1", podCIDRs: [] },
        { name: "new2", podCIDRs: [] },
      ],
      config,
    );
    assert.deepEqual(Object.fromEntries(result), { new1: ["10.244.1.0/24"], new2: ["10.244.3.0/24"] });
  });

  it("treats reserved (in-flight) allocations as used and does not re-allocate their nodes", () => {
    const result = allocateNodeCidrs(
      [
        { name: "a", podCIDRs: [] },
        { name: "b", podCIDRs: [] },
      ],
      config,
      new Map([["a", ["10.244.0.0/24"]]]),
    );
    assert.deepEqual(Object.fromEntries(result), { b: ["10.244.1.0/24"] });
  });

  it("allocates one CIDR per family for dual-stack", () => {
    const dual = ipamConfig("10.1.0.0/16,fd00:10:1::/56", 24, 64);
    const result = allocateNodeCidrs([{ name: "a", podCIDRs: [] }], dual);
    assert.deepEqual(result.get("a"), ["10.1.0.0/24", "fd00:10:1::/64"]);
  });

  it("fails clearly when the subnet is exhausted and rejects bad configs", () => {
    const tiny = ipamConfig("10.0.0.0/23", 24);
    const nodes = ["a", "b", "c"].map((name) => ({ name, podCIDRs: [] }));
    assert.throws(() => allocateNodeCidrs(nodes, tiny), /no free \/24 left/);
    assert.throws(() => ipamConfig("10.0.0.0/16,10.1.0.0/16"), /same IP family/);
    assert.throws(() => ipamConfig("10.0.0.0/25", 24), /larger than/);
  });
});
