import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { IpamExhaustedError, PodIpAllocator } from "./allocator.js";

describe("pod IP allocator", () => {
  it("never hands out an address twice and skips network, router and broadcast", () => {
    const ipam = new PodIpAllocator("10.1.1.0/29");
    const ips = ["a", "b", "c", "d", "e"].map((owner) => ipam.allocate(owner));
    assert.deepEqual(ips, ["10.1.1.2", "10.1.1.3", "10.1.1.4", "10.1.1.5", "10.1.1.6"]);
    assert.equal(ipam.routerAddress, "10.1.1.1");
    assert.throws(() => ipam.allocate("f"), IpamExhaustedError);
    assert.equal(ipam.release("c"), "10.1.1.4");
    assert.equal(ipam.allocate("f"), "10.1.1.4");
  });

  it("is idempotent per owner, as retried ADDs need", () => {
    const ipam = new PodIpAllocator("10.1.1.0/24");
    assert.equal(ipam.allocate("pod"), ipam.allocate("pod"));
    assert.equal(ipam.allocated.size, 1);
  });

  it("restores allocations found after a restart and refuses conflicting ones", () => {
    const ipam = new PodIpAllocator("10.1.1.0/24");
    ipam.restore("10.1.1.2", "old");
    assert.notEqual(ipam.allocate("new"), "10.1.1.2");
    assert.throws(() => ipam.restore("10.1.1.2", "other"), /owned by old/);
    assert.throws(() => ipam.restore("10.2.0.1", "x"), /outside the pod CIDR/);
  });
});
