// ClientIP session affinity (include/dp_lb_affinity.h) under BPF_PROG_TEST_RUN: the per-packet
// service LB of from-pod with the affinity flag and timeout the reconciler writes.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import type { Codec } from "../libbpf-ts/codec.js";
import { BpfMap } from "../libbpf-ts/map.js";
import { mountPrivateBpffs, type PrivateBpffs } from "../testing.js";
import { reconcileMaps } from "./apply.js";
import { Proto } from "./codecs.js";
import { Datapath, ProgramName } from "./loader.js";
import { buildPacket, parsePacket } from "./packet.js";
import type { DesiredService } from "./reconcile.js";

const VIP = "10.96.0.10";
const BACKENDS = Array.from({ length: 8 }, (_, i) => `10.3.0.${i + 1}`);

/** struct lb_affinity_key (20 bytes) and lb_affinity_value (16 bytes), read as raw bytes. */
const raw = (size: number): Codec<Buffer> => ({
  size,
  encode: (value, target, offset) => value.copy(target, offset),
  decode: (source, offset) => Buffer.from(source.subarray(offset, offset + size)),
});

function service(affinityTimeoutSeconds?: number, backends = BACKENDS): DesiredService {
  return {
    frontend: { address: VIP, port: 80, proto: Proto.TCP },
    backends: backends.map((address) => ({ address, port: 8080 })),
    ...(affinityTimeoutSeconds ? { affinityTimeoutSeconds } : {}),
  };
}

describe("ClientIP session affinity (per-packet service LB)", () => {
  let bpffs: PrivateBpffs;
  let datapath: Datapath;
  let affinity: BpfMap<Buffer, Buffer>;
  let sport = 30000;

  /** A new connection (fresh source port) from `client`: the backend its SYN was DNATed to. */
  const connect = (client: string) => {
    const out = datapath.program(ProgramName.fromPod).testRun({
      data: buildPacket({ saddr: client, daddr: VIP, proto: Proto.TCP, sport: sport++, dport: 80 }),
    });
    return parsePacket(out.data).daddr;
  };
  const state = (services: DesiredService[]) => ({ services, endpoints: [], remoteNodes: [], ipcache: [] });

  before(() => {
    bpffs = mountPrivateBpffs();
    datapath = Datapath.load({ pinRoot: `${bpffs.path}/node` });
    affinity = BpfMap.openPinned(join(bpffs.path, "node", "maps", "cm_lb_affinity"), raw(20), raw(16));
  });
  after(() => {
    affinity?.close();
    datapath?.close();
    bpffs?.cleanup();
  });
  beforeEach(() => {
    for (const key of [...affinity.keys()]) affinity.delete(key);
  });

  it("without affinity, a client's new connections spread over the backends", () => {
    reconcileMaps(datapath.maps, state([service()]));
    const seen = new Set(Array.from({ length: 24 }, () => connect("10.1.0.10")));
    assert.ok(seen.size > 1, `24 connections all went to ${[...seen]}`);
    assert.equal([...affinity.keys()].length, 0, "no affinity entries without the flag");
  });

  it("with ClientIP affinity, each client's new connections stick to one backend", () => {
    reconcileMaps(datapath.maps, state([service(60)]));
    const clients = ["10.1.0.10", "10.1.0.11", "10.1.0.12", "10.1.0.13"];
    const chosen = clients.map((client) => {
      const seen = new Set(Array.from({ length: 12 }, () => connect(client)));
      assert.equal(seen.size, 1, `${client} went to ${[...seen]}`);
      return [...seen][0];
    });
    assert.ok(chosen.every((backend) => BACKENDS.includes(backend)));
    assert.equal([...affinity.keys()].length, clients.length, "one entry per client");
  });

  it("a removed backend is not chosen from a stale entry; the client gets another one and sticks to it", () => {
    reconcileMaps(datapath.maps, state([service(60)]));
    const first = connect("10.1.0.20");
    reconcileMaps(
      datapath.maps,
      state([
        service(
          60,
          BACKENDS.filter((b) => b !== first),
        ),
      ]),
    );
    const next = new Set(Array.from({ length: 12 }, () => connect("10.1.0.20")));
    assert.equal(next.size, 1);
    assert.notEqual([...next][0], first);
  });

  it("an entry older than the timeout is replaced by a fresh pick", () => {
    reconcileMaps(datapath.maps, state([service(5)]));
    connect("10.1.0.30");
    const [key] = [...affinity.keys()];
    const value = affinity.get(key) as Buffer;
    // last used at boot: far more than 5 s ago
    value.writeBigUInt64LE(0n, 0);
    affinity.set(key, value);
    connect("10.1.0.30");
    const renewed = (affinity.get(key) as Buffer).readBigUInt64LE(0);
    assert.ok(renewed > 0n, "the expired entry was replaced with a new pick at the current time");
  });

  it("switching affinity off stops using the entries", () => {
    reconcileMaps(datapath.maps, state([service(60)]));
    connect("10.1.0.40");
    reconcileMaps(datapath.maps, state([service()]));
    const seen = new Set(Array.from({ length: 24 }, () => connect("10.1.0.40")));
    assert.ok(seen.size > 1, `24 connections all went to ${[...seen]}`);
  });
});
