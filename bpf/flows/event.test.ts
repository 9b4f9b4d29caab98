// The flow event decoder (the layout itself is asserted in dp_flow.h and exercised by flows.root.test.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FAMILY_IPV4, FAMILY_IPV6, Metric, writeAddress } from "../datapath/codecs.js";
import {
  decodeFlowEvent,
  FLOW_EVENT_LAYOUT,
  FlowEventError,
  FlowHook,
  FlowType,
  FlowVerdict,
  isTunnelled,
} from "./event.js";

const m = FLOW_EVENT_LAYOUT.members;

function rawEvent(fields: {
  family: number;
  saddr: string;
  daddr: string;
  origDaddr?: string;
  metrics: number[];
  reason: number;
  hook: number;
  type: number;
  verdict: number;
  tunnel?: string;
}): Buffer {
  const buffer = Buffer.alloc(FLOW_EVENT_LAYOUT.size);
  buffer.writeBigUInt64LE(123456789n, m.ts_ns);
  writeAddress(fields.saddr, buffer, m.saddr);
  writeAddress(fields.daddr, buffer, m.daddr);
  if (fields.origDaddr) writeAddress(fields.origDaddr, buffer, m.orig_daddr);
  buffer.writeUInt32LE(4242, m.src_identity);
  buffer.writeUInt32LE(0x20001, m.dst_identity);
  buffer.writeUInt32LE(11, m.ifindex);
  if (fields.tunnel) writeAddress(fields.tunnel, buffer, m.tunnel_ip4);
  buffer.writeUInt32LE(74, m.len);
  buffer.writeUInt32LE(
    fields.metrics.reduce((mask, bit) => mask | (1 << bit), 0),
    m.metrics,
  );
  buffer.writeUInt16BE(40001, m.sport);
  buffer.writeUInt16BE(8080, m.dport);
  buffer.writeUInt16BE(80, m.orig_dport);
  buffer[m.type] = fields.type;
  buffer[m.hook] = fields.hook;
  buffer[m.reason] = fields.reason;
  buffer[m.verdict] = fields.verdict;
  buffer[m.proto] = 6;
  buffer[m.family] = fields.family;
  buffer[m.tcp_flags] = 0x12;
  return buffer;
}

describe("flow event decoder", () => {
  it("decodes a translated, tunnelled IPv4 forward", () => {
    const event = decodeFlowEvent(
      rawEvent({
        family: FAMILY_IPV4,
        saddr: "10.1.0.10",
        daddr: "10.2.0.10",
        origDaddr: "10.96.0.10",
        metrics: [Metric.LbDnat, Metric.CtNew, Metric.ForwardTunnel],
        reason: Metric.ForwardTunnel,
        hook: FlowHook.FromPod,
        type: FlowType.Trace,
        verdict: FlowVerdict.Forwarded,
        tunnel: "172.20.0.2",
      }),
    );
    assert.deepEqual(event, {
      monotonicNs: 123456789n,
      type: FlowType.Trace,
      verdict: FlowVerdict.Forwarded,
      hook: "from-pod",
      reason: "ForwardTunnel",
      reasons: ["ForwardTunnel", "LbDnat", "CtNew"],
      family: 4,
      source: "10.1.0.10",
      destination: "10.2.0.10",
      sourcePort: 40001,
      destinationPort: 8080,
      proto: 6,
      tcpFlags: 0x12,
      sourceIdentity: 4242,
      destinationIdentity: 0x20001,
      ifindex: 11,
      length: 74,
      policy: 0,
      originalDestination: { address: "10.96.0.10", port: 80 },
      tunnelPeer: "172.20.0.2",
    });
    assert.equal(isTunnelled(event), true);
  });

  it("decodes an IPv6 drop; no translation, no tunnel peer", () => {
    const event = decodeFlowEvent(
      rawEvent({
        family: FAMILY_IPV6,
        saddr: "fd00:1::10",
        daddr: "fd00:96::10",
        origDaddr: "fd00:96::10",
        metrics: [Metric.DropNoBackend],
        reason: Metric.DropNoBackend,
        hook: FlowHook.FromPod,
        type: FlowType.Drop,
        verdict: FlowVerdict.Dropped,
      }),
    );
    assert.equal(event.reason, "DropNoBackend");
    assert.deepEqual([event.source, event.destination, event.family], ["fd00:1::10", "fd00:96::10", 6]);
    assert.equal(event.originalDestination, undefined, "only a DNAT sets the original destination");
    assert.equal(event.tunnelPeer, undefined);
    assert.equal(isTunnelled(event), false);
  });

  it("a malformed packet's drop has no addresses", () => {
    const event = decodeFlowEvent(
      rawEvent({
        family: 0,
        saddr: "0.0.0.0",
        daddr: "0.0.0.0",
        metrics: [Metric.DropInvalid],
        reason: Metric.DropInvalid,
        hook: FlowHook.FromTunnel,
        type: FlowType.Drop,
        verdict: FlowVerdict.Dropped,
      }),
    );
    assert.deepEqual([event.family, event.source, event.destination, event.hook], [0, "", "", "from-tunnel"]);
  });

  it("rejects a short record, naming the sizes", () => {
    assert.throws(() => decodeFlowEvent(Buffer.alloc(10)), FlowEventError);
    assert.throws(() => decodeFlowEvent(Buffer.alloc(10)), /10 bytes, expected 96/);
  });
});
