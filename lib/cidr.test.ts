import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  cidrContains,
  cidrsOverlap,
  formatCidr,
  formatIp,
  nthAddress,
  nthSubnet,
  parseCidr,
  parseCidrList,
  parseIp,
} from "./cidr.js";

describe("cidr", () => {
  it("parses and normalises IPv4 and IPv6 CIDRs", () => {
    assert.equal(formatCidr(parseCidr("10.1.2.3/16")), "10.1.0.0/16");
    assert.equal(formatCidr(parseCidr("fd00:10:244::1/64")), "fd00:10:244::/64");
    assert.equal(formatIp(6, parseIp("::ffff:10.0.0.1").value), "::ffff:a00:1");
  });

  it("rejects malformed input with the offending text", () => {
    assert.throws(() => parseCidr("10.1.0.0"), /"10.1.0.0" is not a CIDR/);
    assert.throws(() => parseCidr("10.1.0.0/33"), /invalid prefix length/);
    assert.throws(() => parseCidr("10.1.0/16"), /not an IPv4 or IPv6 address/);
  });

  it("detects overlap in both directions and only within a family", () => {
    assert.ok(cidrsOverlap(parseCidr("10.0.0.0/8"), parseCidr("10.1.0.0/16")));
    assert.ok(cidrsOverlap(parseCidr("10.1.0.0/16"), parseCidr("10.0.0.0/8")));
    assert.ok(!cidrsOverlap(parseCidr("10.1.0.0/16"), parseCidr("10.2.0.0/16")));
    assert.ok(!cidrsOverlap(parseCidr("0.0.0.0/0"), parseCidr("::/0")));
  });

  it("computes addresses and subnets", () => {
    const net = parseCidr("10.1.0.0/16");
    assert.equal(nthAddress(net, 1), "10.1.0.1");
    assert.equal(formatCidr(nthSubnet(net, 24, 3)), "10.1.3.0/24");
    assert.throws(() => nthSubnet(net, 24, 256), /only 256 subnets/);
    assert.ok(cidrContains(net, "10.1.200.9"));
    assert.ok(!cidrContains(net, "10.2.0.1"));
    assert.deepEqual(parseCidrList("10.1.0.0/16, fd00::/56").map(formatCidr), ["10.1.0.0/16", "fd00::/56"]);
  });
});
