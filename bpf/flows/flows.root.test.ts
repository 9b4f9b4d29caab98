// Flow events from real program runs (BPF_PROG_TEST_RUN): what each packet produces, and that a full
// ring costs events (counted), never packets.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, beforeEach, describe, it } from "node:test";
import { reconcileMaps } from "../datapath/apply.js";
import { ConfigFlags, Proto } from "../datapath/codecs.js";
import { Datapath, ProgramName } from "../datapath/loader.js";
import { mapsDirectory } from "../datapath/maps.js";
import { buildPacket, TcpFlag } from "../datapath/packet.js";
import type { DesiredDatapathState, DesiredService } from "../datapath/reconcile.js";
import { BpfMap, bytesCodec, u32Codec } from "../libbpf-ts/index.js";
import { mountPrivateBpffs, type PrivateBpffs } from "../testing.js";
import { AddressBook } from "./address-book.js";
import { CONFIG_FLAG_FLOWS, type FlowEvent, FlowType, FlowVerdict } from "./event.js";
import { FlowAggregation, FlowMapName, FlowSource } from "./source.js";

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;

const CLIENT = "10.1.0.10";
const CLIENT_IDENTITY = 4242;
const VIP = "10.96.0.10";
const REMOTE_NODE = "172.20.0.2";
const REMOTE_POD = "10.2.0.10";
const REMOTE_IDENTITY = (2 << 16) | 77; // cluster id 2
const TABLE_BYTES = FlowAggregation.slots * FlowAggregation.slotBytes;

function state(services: DesiredService[]): DesiredDatapathState {
  return {
    services,
    endpoints: [
      {
        address: CLIENT,
        ifindex: 11,
        identity: CLIENT_IDENTITY,
        mac: "02:aa:00:00:00:10",
        nodeMac: "02:bb:00:00:00:10",
      },
    ],
    remoteNodes: [
      {
        nodeIp: REMOTE_NODE,
        podCidrs: ["10.2.0.0/24"],
        nodeIdentity: 6,
        podCidrIdentity: 2,
        remoteCluster: true,
      },
    ],
    ipcache: [
      {
        prefix: `${REMOTE_POD}/32`,
        identity: REMOTE_IDENTITY,
        tunnelEndpoint: REMOTE_NODE,
        remoteCluster: true,
      },
    ],
  };
}

describe("flow events (BPF_PROG_TEST_RUN)", () => {
  let bpffs: PrivateBpffs;
  let datapath: Datapath;
  let source: FlowSource;
  let events: FlowEvent[] = [];

  const fromPod = (daddr: string, dport: number, tcpFlags: number = TcpFlag.SYN) =>
    datapath.program(ProgramName.fromPod).testRun({
      data: buildPacket({ saddr: CLIENT, daddr, proto: Proto.TCP, sport: 40001, dport, tcpFlags }),
    });
  let book: AddressBook;
  const program = (desired: DesiredDatapathState) => {
    reconcileMaps(datapath.maps, desired);
    book = new AddressBook(desired);
  };
  /** what the agent sees: the events with what the datapath left out resolved from the same state */
  const drained = () => {
    events = [];
    source.drain();
    return events.map((event) => book.resolve(event));
  };

  before(() => {
    bpffs = mountPrivateBpffs("cm-flows-");
    datapath = Datapath.load({ pinRoot: `${bpffs.path}/node` });
    datapath.maps.setConfig({ tunnelIfindex: 77, flags: ConfigFlags.Trace, worldIdentity: 2 });
    source = FlowSource.open(`${bpffs.path}/node`, { onEvent: (event) => events.push(event) });
  });
  after(() => {
    source?.close();
    datapath?.close();
    bpffs?.cleanup();
  });
  beforeEach(() => {
    source.setReporting("on");
    // the tests reuse one connection's addresses: each starts with nothing reported yet
    source.clearAggregation();
    drained();
  });

  it("emits nothing while flows are off, and keeps the other config bits when switched", () => {
    source.setReporting("off");
    program(state([]));
    assert.equal(fromPod(REMOTE_POD, 80).returnValue, TC_ACT_REDIRECT);
    assert.deepEqual(drained(), []);
    assert.equal(source.enabled(), false);
    assert.equal(datapath.maps.config.get(0)?.flags, ConfigFlags.Trace, "trace bit untouched");
  });

  it("a service without backends: a drop event with its reason, identities, ports and TCP flags", () => {
    program(state([{ frontend: { address: VIP, port: 80, proto: Proto.TCP }, backends: [] }]));
    assert.equal(fromPod(VIP, 80).returnValue, TC_ACT_SHOT);
    const [event, ...rest] = drained();
    assert.deepEqual(rest, []);
    assert.equal(event.type, FlowType.Drop);
    assert.equal(event.verdict, FlowVerdict.Dropped);
    assert.equal(event.reason, "DropNoBackend");
    assert.equal(event.hook, "from-pod");
    assert.deepEqual(
      [event.source, event.sourcePort, event.destination, event.destinationPort, event.proto, event.family],
      [CLIENT, 40001, VIP, 80, Proto.TCP, 4],
    );
    assert.equal(event.tcpFlags, TcpFlag.SYN);
    assert.equal(event.sourceIdentity, CLIENT_IDENTITY);
    assert.equal(event.originalDestination, undefined);
    assert.ok(event.monotonicNs > 0n);
  });

  it("a service translation: the event shows the backend and the VIP it was addressed to", () => {
    program(
      state([
        {
          frontend: { address: VIP, port: 80, proto: Proto.TCP },
          backends: [{ address: REMOTE_POD, port: 8080 }],
        },
      ]),
    );
    assert.equal(fromPod(VIP, 80).returnValue, TC_ACT_REDIRECT);
    const [event] = drained();
    assert.equal(event.type, FlowType.Trace);
    assert.equal(event.verdict, FlowVerdict.Forwarded);
    assert.deepEqual([event.destination, event.destinationPort], [REMOTE_POD, 8080]);
    assert.deepEqual(event.originalDestination, { address: VIP, port: 80 });
    assert.ok(event.reasons.includes("LbDnat"), event.reasons.join());
    assert.equal(event.reason, "ForwardTunnel");
    assert.equal(event.tunnelPeer, REMOTE_NODE, "cross-cluster: tunnelled to the backend's node");
    assert.equal(event.destinationIdentity, REMOTE_IDENTITY);
  });

  it("aggregation: an established TCP segment is not reported unless every packet is asked for", () => {
    program(state([]));
    fromPod(REMOTE_POD, 80, TcpFlag.ACK);
    assert.deepEqual(drained(), [], "ACK only: aggregated away, as Cilium's monitor aggregation does");
    source.setReporting("all");
    fromPod(REMOTE_POD, 80, TcpFlag.ACK);
    assert.equal(drained().length, 1);
    source.setReporting("on");
    assert.equal(datapath.maps.config.get(0)?.flags, ConfigFlags.Trace | CONFIG_FLAG_FLOWS, "trace bit kept");
  });

  it("aggregation: a connection is reported when it shows a new SYN, FIN or RST, not for a retransmit", () => {
    program(state([]));
    const flagsSeen = () => drained().map((event) => event.tcpFlags);
    fromPod(REMOTE_POD, 80, TcpFlag.SYN);
    fromPod(REMOTE_POD, 80, TcpFlag.SYN);
    assert.deepEqual(flagsSeen(), [TcpFlag.SYN], "the retransmitted SYN is aggregated");
    fromPod(REMOTE_POD, 80, TcpFlag.ACK);
    fromPod(REMOTE_POD, 80, TcpFlag.FIN | TcpFlag.ACK);
    fromPod(REMOTE_POD, 80, TcpFlag.FIN | TcpFlag.ACK);
    assert.deepEqual(flagsSeen(), [TcpFlag.FIN | TcpFlag.ACK], "the close, once");
    fromPod(REMOTE_POD, 80, TcpFlag.SYN);
    assert.deepEqual(flagsSeen(), [TcpFlag.SYN], "the same ports opened again: a new connection");
    fromPod(REMOTE_POD, 81, TcpFlag.SYN);
    assert.deepEqual(flagsSeen(), [TcpFlag.SYN], "another connection has its own state");
  });

  it("aggregation: a UDP stream is reported once per interval; drops always; switching on starts afresh", () => {
    program(state([{ frontend: { address: VIP, port: 53, proto: Proto.UDP }, backends: [] }]));
    const udp = (daddr: string) =>
      datapath.program(ProgramName.fromPod).testRun({
        data: buildPacket({ saddr: CLIENT, daddr, proto: Proto.UDP, sport: 40001, dport: 53 }),
        repeat: 5,
      });
    assert.equal(udp(REMOTE_POD).returnValue, TC_ACT_REDIRECT);
    assert.equal(drained().length, 1, "5 datagrams, 1 event (the next after 5 s)");
    // age the stream's report by the interval rather than wait 5 s. Slots are {tag, last, flags};
    // the stream's slot is on the CPU the test ran on: aged, it is written to every CPU
    const table = BpfMap.openPinned(
      join(mapsDirectory(`${bpffs.path}/node`), FlowMapName.aggregation),
      u32Codec,
      bytesCodec(TABLE_BYTES),
    );
    try {
      const aged = Buffer.alloc(TABLE_BYTES);
      for (const cpu of table.getPerCpu(0) ?? [])
        for (let offset = 0; offset < aged.length; offset += FlowAggregation.slotBytes)
          if (cpu.readUInt32LE(offset) !== 0) {
            cpu.copy(aged, offset, offset, offset + FlowAggregation.slotBytes);
            aged.writeUInt32LE(
              (cpu.readUInt32LE(offset + 4) - FlowAggregation.intervalUnits) >>> 0,
              offset + 4,
            );
          }
      assert.notDeepEqual(aged, Buffer.alloc(aged.length), "the stream has a slot");
      table.setPerCpu(0, aged);
    } finally {
      table.close();
    }
    udp(REMOTE_POD);
    assert.equal(drained().length, 1, "5 s after the last report: reported again, once");
    assert.equal(udp(VIP).returnValue, TC_ACT_SHOT);
    assert.equal(drained().filter((event) => event.type === FlowType.Drop).length, 5, "every drop");
    source.setReporting("off");
    source.setReporting("on");
    udp(REMOTE_POD);
    assert.equal(drained().length, 1, "reported again after flows were switched back on");
  });

  it("a cross-cluster forward: tunnel peer and the remote identity (with its cluster id)", () => {
    program(state([]));
    assert.equal(fromPod(REMOTE_POD, 80, TcpFlag.SYN | TcpFlag.ACK).returnValue, TC_ACT_REDIRECT);
    const [event] = drained();
    assert.equal(event.reason, "ForwardTunnel");
    assert.equal(event.tunnelPeer, REMOTE_NODE);
    assert.equal(event.destinationIdentity >> 16, 2);
    assert.equal(event.tcpFlags, TcpFlag.SYN | TcpFlag.ACK);
  });

  it("to-pod: a delivery is an event with the identity the sender recorded", () => {
    program(state([]));
    const result = datapath.program(ProgramName.toPod).testRun({
      data: buildPacket({ saddr: REMOTE_POD, daddr: CLIENT, proto: Proto.UDP, sport: 53, dport: 40001 }),
    });
    assert.equal(result.returnValue, TC_ACT_OK);
    const [event] = drained();
    assert.equal(event.hook, "to-pod");
    assert.equal(event.verdict, FlowVerdict.Forwarded);
    assert.equal(event.sourceIdentity, REMOTE_IDENTITY, "no mark in test-run: resolved from the ipcache");
    assert.equal(event.destinationIdentity, CLIENT_IDENTITY);
  });

  it("a reader that falls behind: events are lost and counted, every packet still forwarded", () => {
    program(state([]));
    source.setReporting("all"); // the same packet over and over: aggregated otherwise
    const lostBefore = source.lostEvents();
    const packets = 60_000; // more than the 4 MiB ring holds (~40k events)
    const result = datapath.program(ProgramName.fromPod).testRun({
      data: buildPacket({ saddr: CLIENT, daddr: REMOTE_POD, proto: Proto.TCP, sport: 40001, dport: 80 }),
      repeat: packets,
    });
    assert.equal(result.returnValue, TC_ACT_REDIRECT);
    const lost = Number(source.lostEvents() - lostBefore);
    events = [];
    source.drain();
    const received = events.length;
    assert.ok(lost > 0, "the ring filled up");
    assert.equal(received + lost, packets, `received ${received} + lost ${lost}`);
    assert.equal(datapath.maps.readMetrics().ForwardTunnel.packets >= BigInt(packets), true);
    source.setReporting("on");
  });
});
