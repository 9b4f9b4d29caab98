import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type Codec, encodeToBuffer } from "../libbpf-ts/index.js";
import {
  backendCodec,
  ctKeyCodec,
  endpointInfoCodec,
  ipcacheKeyCodec,
  ipcacheValueCodec,
  Proto,
  serviceKeyCodec,
  serviceValueCodec,
} from "./codecs.js";

describe("datapath codecs", () => {
  it("encodes a service key in network order with the IPv4 family", () => {
    const bytes = encodeToBuffer(serviceKeyCodec, {
      address: "10.96.0.10",
      port: 80,
      proto: Proto.TCP,
      backendSlot: 3,
    });
    assert.equal(bytes.toString("hex"), `0a60000a${"00".repeat(12)}0050030006010000`);
  });

  it("round-trips every codec", () => {
    const cases: Array<[Codec<unknown>, unknown]> = [
      [serviceKeyCodec, { address: "10.96.0.10", port: 443, proto: Proto.UDP, backendSlot: 0, scope: 0 }],
      [serviceValueCodec, { backendId: 7, count: 3, revNatIndex: 9, flags: 0, flags2: 0 }],
      [backendCodec, { address: "10.2.0.10", port: 8080, proto: Proto.TCP, state: 0, clusterId: 2, zone: 0 }],
      [
        ctKeyCodec,
        { saddr: "10.1.0.1", daddr: "10.96.0.1", sport: 40000, dport: 80, proto: Proto.TCP, direction: 1 },
      ],
      [ipcacheKeyCodec, { prefix: "10.2.0.0/24", clusterId: 0 }],
      [ipcacheValueCodec, { identity: 65537, tunnelEndpoint: "172.20.0.2", remoteCluster: true }],
      [ipcacheValueCodec, { identity: 6 }],
      [
        endpointInfoCodec,
        { ifindex: 5, identity: 1234, mac: "02:aa:bb:cc:dd:ee", nodeMac: "02:00:00:00:00:01", flags: 0 },
      ],
    ];
    for (const [codec, value] of cases) {
      const buffer = Buffer.alloc(codec.size + 3);
      codec.encode(value, buffer, 3);
      assert.deepEqual(codec.decode(buffer, 3), value);
    }
  });

  it("stores IPv6 addresses in the same 16-byte field", () => {
    const key = { address: "fd00::10", port: 80, proto: Proto.TCP, backendSlot: 0, scope: 0 };
    const bytes = encodeToBuffer(serviceKeyCodec, key);
    assert.equal(bytes[21], 2, "family IPv6");
    assert.deepEqual(serviceKeyCodec.decode(bytes, 0), key);
  });

  it("counts the 32 static bits in an ipcache prefix length, as Cilium does", () => {
    const bytes = encodeToBuffer(ipcacheKeyCodec, { prefix: "10.2.0.0/24" });
    assert.equal(bytes.readUInt32LE(0), 56);
    assert.equal(encodeToBuffer(ipcacheKeyCodec, { prefix: "10.2.0.9" }).readUInt32LE(0), 64);
  });

  it("rejects malformed input instead of writing garbage", () => {
    assert.throws(() =>
      encodeToBuffer(serviceKeyCodec, { address: "10.0.0.300", port: 1, proto: 6, backendSlot: 0 }),
    );
    assert.throws(() => encodeToBuffer(ipcacheKeyCodec, { prefix: "10.0.0.0/33" }));
  });
});
