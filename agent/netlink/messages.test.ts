import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { dumpRoutes4, parseRoute, splitMessages } from "./dumps.js";
import {
  ackFor,
  addAddress32,
  addDefaultRoute,
  addVeth,
  deleteLink,
  ipv4Bytes,
  linkRoute32,
  linkUp,
  macBytes,
  NlFlag,
  permanentNeighbour,
  RtmType,
} from "./messages.js";

interface Attr {
  type: number;
  payload: Buffer;
}

/** Splits a run of rtattrs (the kernel's nla_for_each_attr). */
function attrs(bytes: Buffer): Attr[] {
  const out: Attr[] = [];
  for (let at = 0; at + 4 <= bytes.length; ) {
    const length = bytes.readUInt16LE(at);
    out.push({ type: bytes.readUInt16LE(at + 2), payload: bytes.subarray(at + 4, at + length) });
    at += (length + 3) & ~3;
  }
  return out;
}

function header(bytes: Buffer) {
  return {
    length: bytes.readUInt32LE(0),
    type: bytes.readUInt16LE(4),
    flags: bytes.readUInt16LE(6),
    seq: bytes.readUInt32LE(8),
  };
}

const find = (list: Attr[], type: number) => {
  const found = list.find((a) => a.type === type);
  assert.ok(found, `attribute ${type} present`);
  return found.payload;
};

describe("rtnetlink requests", () => {
  it("asks for an acknowledgement and carries the sequence number in every request", () => {
    for (const request of [linkUp("eth0"), deleteLink("lxc1"), addAddress32("10.0.0.1", 3)]) {
      const bytes = request.encode(77);
      const h = header(bytes);
      assert.equal(h.length, bytes.length);
      assert.equal(h.seq, 77);
      assert.equal(h.flags & (NlFlag.request | NlFlag.ack), NlFlag.request | NlFlag.ack);
    }
  });

  it("creates a veth exclusively, with the peer's name, MAC, MTU and netns fd nested in its link info", () => {
    const bytes = addVeth({
      hostIf: "lxcabc",
      hostMac: "02:00:00:00:00:01",
      podIf: "eth0",
      podMac: "0a:00:00:00:00:02",
      mtu: 1450,
      podNetnsFd: 42,
    }).encode(1);
    const h = header(bytes);
    assert.equal(h.type, RtmType.newLink);
    assert.equal(h.flags & (NlFlag.create | NlFlag.excl), NlFlag.create | NlFlag.excl);
    const top = attrs(bytes.subarray(16 + 16));
    assert.equal(find(top, 3).toString(), "lxcabc\0");
    assert.deepEqual([...find(top, 1)], [2, 0, 0, 0, 0, 1]);
    assert.equal(find(top, 4).readUInt32LE(0), 1450);
    const info = attrs(find(top, 18));
    assert.equal(find(info, 1).toString(), "veth\0");
    const peer = find(attrs(find(info, 2)), 1);
    const peerAttrs = attrs(peer.subarray(16));
    assert.equal(find(peerAttrs, 3).toString(), "eth0\0");
    assert.deepEqual([...find(peerAttrs, 1)], [0x0a, 0, 0, 0, 0, 2]);
    assert.equal(find(peerAttrs, 4).readUInt32LE(0), 1450);
    assert.equal(find(peerAttrs, 28).readUInt32LE(0), 42);
  });

  it("sets a link up by name (flags and change mask IFF_UP)", () => {
    const bytes = linkUp("eth0").encode(1);
    assert.equal(header(bytes).type, RtmType.newLink);
    assert.equal(bytes.readUInt32LE(16 + 8), 1);
    assert.equal(bytes.readUInt32LE(16 + 12), 1);
    assert.equal(find(attrs(bytes.subarray(32)), 3).toString(), "eth0\0");
  });

  it("routes: a replaced /32 link-scope route, an exclusive gateway route, an exclusive default route", () => {
    const host = linkRoute32("10.1.2.3", 7, "replace").encode(1);
    assert.equal(header(host).flags & NlFlag.replace, NlFlag.replace);
    assert.equal(host.readUInt8(16 + 1), 32); // dst_len
    assert.equal(host.readUInt8(16 + 4), 254); // main table
    assert.equal(host.readUInt8(16 + 6), 253); // scope link
    const hostAttrs = attrs(host.subarray(28));
    assert.deepEqual([...find(hostAttrs, 1)], [10, 1, 2, 3]);
    assert.equal(find(hostAttrs, 4).readUInt32LE(0), 7);
    assert.equal(header(linkRoute32("169.254.1.1", 2, "add").encode(1)).flags & NlFlag.excl, NlFlag.excl);
    const fallback = addDefaultRoute("169.254.1.1", 2).encode(1);
    assert.equal(fallback.readUInt8(16 + 1), 0);
    assert.equal(fallback.readUInt8(16 + 6), 0); // scope universe
    assert.deepEqual([...find(attrs(fallback.subarray(28)), 5)], [169, 254, 1, 1]);
  });

  it("a permanent neighbour entry for the gateway", () => {
    const bytes = permanentNeighbour("169.254.1.1", "02:aa:bb:cc:dd:ee", 2).encode(1);
    assert.equal(header(bytes).type, RtmType.newNeigh);
    assert.equal(bytes.readInt32LE(16 + 4), 2);
    assert.equal(bytes.readUInt16LE(16 + 8), 0x80);
    assert.deepEqual([...find(attrs(bytes.subarray(28)), 2)], [2, 0xaa, 0xbb, 0xcc, 0xdd, 0xee]);
  });

  it("names the bad value", () => {
    assert.throws(() => macBytes("02:00"), /mac "02:00"/);
    assert.throws(() => ipv4Bytes("10.0.0.256"), /address "10.0.0.256"/);
  });
});

describe("rtnetlink acknowledgements", () => {
  const ack = (seq: number, error: number) => {
    const b = Buffer.alloc(36);
    b.writeUInt32LE(36, 0);
    b.writeUInt16LE(2, 4);
    b.writeUInt32LE(seq, 8);
    b.writeInt32LE(error, 16);
    return b;
  };

  it("finds the answer to its own sequence number: 0 or a negative errno", () => {
    assert.equal(ackFor(ack(5, 0), 5), 0);
    assert.equal(ackFor(Buffer.concat([ack(4, -17), ack(5, -19)]), 5), -19);
    assert.equal(ackFor(ack(4, 0), 5), undefined);
  });

  it("ignores a truncated message", () => {
    assert.equal(ackFor(ack(5, 0).subarray(0, 20), 5), undefined);
  });
});

describe("rtnetlink dump replies", () => {
  const reply = (type: number, seq: number, body: Buffer) => {
    const header = Buffer.alloc(16);
    header.writeUInt32LE(16 + body.length, 0);
    header.writeUInt16LE(type, 4);
    header.writeUInt32LE(seq, 8);
    return Buffer.concat([header, body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
  };

  it("asks for a dump without an acknowledgement", () => {
    const flags = dumpRoutes4(9).readUInt16LE(6);
    assert.equal(flags & NlFlag.ack, 0);
    assert.equal(flags & NlFlag.dump, NlFlag.dump);
  });

  it("splits a datagram into its messages and drops a truncated tail", () => {
    const two = Buffer.concat([reply(24, 1, Buffer.alloc(12)), reply(3, 1, Buffer.alloc(4))]);
    assert.deepEqual(
      splitMessages(two).map((m) => m.type),
      [24, 3],
    );
    assert.deepEqual(
      splitMessages(two.subarray(0, two.length - 2)).map((m) => m.type),
      [24],
    );
  });

  it("reads a route in iproute2's notation, and skips another family", () => {
    const rtmsg = Buffer.alloc(12);
    rtmsg.writeUInt8(2, 0);
    rtmsg.writeUInt8(16, 1);
    rtmsg.writeUInt8(254, 4);
    const attr = (type: number, payload: number[]) => {
      const b = Buffer.alloc(4 + payload.length);
      b.writeUInt16LE(4 + payload.length, 0);
      b.writeUInt16LE(type, 2);
      Buffer.from(payload).copy(b, 4);
      return b;
    };
    const body = Buffer.concat([
      rtmsg,
      attr(1, [10, 1, 0, 0]),
      attr(5, [10, 0, 0, 1]),
      attr(4, [7, 0, 0, 0]),
    ]);
    assert.deepEqual(parseRoute(body), { dst: "10.1.0.0/16", table: 254, oif: 7, gateway: "10.0.0.1" });
    const v6 = Buffer.from(body);
    v6.writeUInt8(10, 0);
    assert.equal(parseRoute(v6), undefined);
  });
});
