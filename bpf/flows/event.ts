/**
 * The datapath's flow event (struct flow_event in bpf/include/dp_flow.h), decoded. The layout is
 * checked against the compiled objects' BTF by event.test.ts.
 */
import { FAMILY_IPV4, FAMILY_IPV6, Metric, readAddress } from "../datapath/codecs.js";

export const FLOW_EVENT_LAYOUT = {
  size: 96,
  members: {
    ts_ns: 0,
    saddr: 8,
    daddr: 24,
    orig_daddr: 40,
    src_identity: 56,
    dst_identity: 60,
    ifindex: 64,
    tunnel_ip4: 68,
    len: 72,
    metrics: 76,
    sport: 80,
    dport: 82,
    orig_dport: 84,
    type: 86,
    hook: 87,
    reason: 88,
    verdict: 89,
    proto: 90,
    family: 91,
    tcp_flags: 92,
    flags: 93,
    policy: 94,
  },
} as const;

/** cm_config.flags bit that turns flow events on (DP_CONFIG_FLOWS). */
export const CONFIG_FLAG_FLOWS = 2;
/** ... for every packet, without aggregation (DP_CONFIG_FLOWS_ALL; bpf/include/dp_flow_agg.h). */
export const CONFIG_FLAG_FLOWS_ALL = 4;

export const FlowType = { Trace: 1, Drop: 2, PolicyVerdict: 3 } as const;
export const FlowVerdict = { Forwarded: 1, Dropped: 2 } as const;
export const FlowHook = { FromPod: 1, ToPod: 2, FromTunnel: 3, ToTunnel: 4, FromNetdev: 5 } as const;
export type FlowHookName = "from-pod" | "to-pod" | "from-tunnel" | "to-tunnel" | "from-netdev" | "unknown";

const HOOK_NAMES: Record<number, FlowHookName> = {
  [FlowHook.FromPod]: "from-pod",
  [FlowHook.ToPod]: "to-pod",
  [FlowHook.FromTunnel]: "from-tunnel",
  [FlowHook.ToTunnel]: "to-tunnel",
  [FlowHook.FromNetdev]: "from-netdev",
};

const METRIC_NAMES = new Map<number, string>(Object.entries(Metric).map(([name, value]) => [value, name]));

export interface FlowEvent {
  /** bpf_ktime_get_coarse_ns(): CLOCK_MONOTONIC at tick resolution; ring order is the precise order */
  monotonicNs: bigint;
  type: number;
  verdict: number;
  hook: FlowHookName;
  /** the last dp_metric reason the hook counted: the drop reason for drops */
  reason: string;
  /** every reason the hook counted for this packet (LbDnat, ForwardTunnel, ...) */
  reasons: string[];
  family: 4 | 6 | 0;
  source: string;
  destination: string;
  /** the destination before a service translation, when one happened */
  originalDestination?: { address: string; port: number };
  sourcePort: number;
  destinationPort: number;
  proto: number;
  tcpFlags: number;
  /** 0 when the datapath did not read it from the packet: AddressBook.resolve fills it in */
  sourceIdentity: number;
  destinationIdentity: number;
  ifindex: number;
  /** the remote node of a tunnelled packet */
  tunnelPeer?: string;
  length: number;
  policy: number;
}

function reasonNames(mask: number): string[] {
  const names: string[] = [];
  for (let bit = 0; bit < 32; bit++)
    if (mask & (1 << bit)) names.push(METRIC_NAMES.get(bit) ?? `reason${bit}`);
  return names;
}

export class FlowEventError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlowEventError";
  }
}

export function decodeFlowEvent(source: Buffer): FlowEvent {
  const m = FLOW_EVENT_LAYOUT.members;
  if (source.length < FLOW_EVENT_LAYOUT.size)
    throw new FlowEventError(`flow event: ${source.length} bytes, expected ${FLOW_EVENT_LAYOUT.size}`);
  const familyCode = source[m.family];
  const family = familyCode === FAMILY_IPV4 ? 4 : familyCode === FAMILY_IPV6 ? 6 : 0;
  const address = (offset: number) => (family ? readAddress(source, offset, familyCode) : "");
  const mask = source.readUInt32LE(m.metrics);
  const reasons = reasonNames(mask);
  const translated = (mask & ((1 << Metric.LbDnat) | (1 << Metric.NodePortDnat))) !== 0;
  const tunnelRaw = source.readUInt32BE(m.tunnel_ip4);
  const event: FlowEvent = {
    monotonicNs: source.readBigUInt64LE(m.ts_ns),
    type: source[m.type],
    verdict: source[m.verdict],
    hook: HOOK_NAMES[source[m.hook]] ?? "unknown",
    reason: METRIC_NAMES.get(source[m.reason]) ?? `reason${source[m.reason]}`,
    reasons,
    family,
    source: address(m.saddr),
    destination: address(m.daddr),
    sourcePort: source.readUInt16BE(m.sport),
    destinationPort: source.readUInt16BE(m.dport),
    proto: source[m.proto],
    tcpFlags: source[m.tcp_flags],
    sourceIdentity: source.readUInt32LE(m.src_identity),
    destinationIdentity: source.readUInt32LE(m.dst_identity),
    ifindex: source.readUInt32LE(m.ifindex),
    length: source.readUInt32LE(m.len),
    policy: source.readUInt16LE(m.policy),
  };
  if (translated && family) {
    event.originalDestination = {
      address: address(m.orig_daddr),
      port: source.readUInt16BE(m.orig_dport),
    };
  }
  if (tunnelRaw) event.tunnelPeer = readAddress(source, m.tunnel_ip4, FAMILY_IPV4);
  return event;
}

/** Whether the packet left (or arrived) through the tunnel: a cross-node / cross-cluster hop. */
export function isTunnelled(event: FlowEvent): boolean {
  return (
    event.hook === "from-tunnel" ||
    event.hook === "to-tunnel" ||
    event.reasons.includes("ForwardTunnel") ||
    event.reasons.includes("TunnelHostTx")
  );
}
