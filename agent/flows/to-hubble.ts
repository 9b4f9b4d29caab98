/**
 * A datapath flow event, enriched, as Hubble's flow.Flow: verdict and drop reason, the trace
 * observation point (Cilium's names for where the packet was seen), both endpoints with pod,
 * namespace, labels and cluster, the service a translated packet was addressed to, and the tunnel.
 */
import { randomUUID } from "node:crypto";
import { type FlowEvent, FlowType, isTunnelled } from "../../bpf/flows/event.js";
import {
  type HubbleEndpoint,
  type HubbleFlow,
  MonitorMessageType,
  nsToTimestamp,
  type TcpFlags,
} from "../../lib/hubble/flow.js";
import type { EndpointView, FlowDirectory } from "./directory.js";

/** Our drop reasons (enum dp_metric) as Hubble's DropReason (flow.proto). */
export const DROP_REASONS: Record<string, { name: string; code: number }> = {
  DropNoBackend: { name: "SERVICE_BACKEND_NOT_FOUND", code: 158 },
  DropBackendSlot: { name: "SERVICE_BACKEND_NOT_FOUND", code: 158 },
  DropInvalid: { name: "INVALID_PACKET_DROPPED", code: 134 },
  DropTunnelKey: { name: "ERROR_RETRIEVING_TUNNEL_KEY", code: 147 },
  DropNoConfig: { name: "NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT", code: 160 },
  DropRewrite: { name: "ERROR_WRITING_TO_PACKET", code: 141 },
  DropPolicy: { name: "POLICY_DENIED", code: 133 },
  DropNoTunnelEndpoint: { name: "NO_TUNNEL_OR_ENCAPSULATION_ENDPOINT", code: 160 },
  DropSnatPorts: { name: "NO_MAPPING_FOR_NAT_MASQUERADE", code: 167 },
  DropNoRoute: { name: "FIB_LOOKUP_FAILED", code: 169 },
};

/** Trace observation points with Cilium's monitor trace sub-types (pkg/monitor/api/types.go). */
const POINTS = {
  TO_ENDPOINT: 0,
  TO_HOST: 2,
  TO_STACK: 3,
  TO_OVERLAY: 4,
  FROM_ENDPOINT: 5,
  FROM_OVERLAY: 9,
  FROM_NETWORK: 10,
  TO_NETWORK: 11,
} as const;
type Point = keyof typeof POINTS;

export function observationPoint(event: FlowEvent): Point {
  const did = (reason: string) => event.reasons.includes(reason);
  switch (event.hook) {
    case "from-pod":
      if (did("ForwardTunnel")) return "TO_OVERLAY";
      if (did("ForwardLocal")) return "TO_ENDPOINT";
      if (did("ForwardNetdev")) return "TO_NETWORK";
      if (did("ForwardStack")) return "TO_STACK";
      return "FROM_ENDPOINT";
    case "to-pod":
      return "TO_ENDPOINT";
    case "from-tunnel":
      if (did("ForwardNetdev")) return "TO_NETWORK";
      return "FROM_OVERLAY";
    case "to-tunnel":
      return "TO_OVERLAY";
    default:
      if (did("ForwardLocal")) return "TO_ENDPOINT";
      if (did("ForwardTunnel")) return "TO_OVERLAY";
      if (did("ForwardNetdev")) return "TO_NETWORK";
      return "FROM_NETWORK";
  }
}

const TCP_FLAG_BITS: Array<[keyof TcpFlags, number]> = [
  ["FIN", 0x01],
  ["SYN", 0x02],
  ["RST", 0x04],
  ["PSH", 0x08],
  ["ACK", 0x10],
  ["URG", 0x20],
  ["ECE", 0x40],
  ["CWR", 0x80],
];

function tcpFlags(bits: number): TcpFlags {
  const flags: TcpFlags = {};
  for (const [name, bit] of TCP_FLAG_BITS) if (bits & bit) flags[name] = true;
  return flags;
}

function endpointMessage(view: EndpointView): HubbleEndpoint {
  return {
    identity: view.identity,
    ...(view.cluster ? { cluster_name: view.cluster } : {}),
    ...(view.namespace ? { namespace: view.namespace } : {}),
    ...(view.podName ? { pod_name: view.podName } : {}),
    ...(view.labels.length ? { labels: view.labels } : {}),
  };
}

export interface ConversionContext {
  nodeName: string;
  directory: FlowDirectory;
  /** wall clock minus CLOCK_MONOTONIC, in ns (the event carries monotonic time) */
  realtimeOffsetNs: bigint;
  /** the service a VIP belongs to, when known */
  serviceOf?: (address: string, port: number) => { name: string; namespace: string } | undefined;
}

export function realtimeOffsetNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
}

export function toHubbleFlow(raw: FlowEvent, context: ConversionContext): HubbleFlow {
  const event = context.directory.addresses.resolve(raw);
  const dropped = event.type === FlowType.Drop;
  const point = observationPoint(event);
  const flow: HubbleFlow = {
    time: nsToTimestamp(event.monotonicNs + context.realtimeOffsetNs),
    uuid: randomUUID(),
    verdict: dropped ? "DROPPED" : "FORWARDED",
    source: endpointMessage(context.directory.endpoint(event.source, event.sourceIdentity)),
    destination: endpointMessage(context.directory.endpoint(event.destination, event.destinationIdentity)),
    Type: "L3_L4",
    node_name: context.nodeName,
    event_type: dropped
      ? { type: MonitorMessageType.Drop, sub_type: DROP_REASONS[event.reason]?.code ?? 0 }
      : { type: MonitorMessageType.Trace, sub_type: POINTS[point] },
    interface: { index: event.ifindex },
  };
  if (event.family) {
    flow.IP = {
      source: event.source,
      destination: event.destination,
      ipVersion: event.family === 4 ? "IPv4" : "IPv6",
    };
  }
  if (dropped) {
    const reason = DROP_REASONS[event.reason];
    flow.drop_reason = reason?.code ?? 0;
    flow.drop_reason_desc = reason?.name ?? "DROP_REASON_UNKNOWN";
  } else {
    flow.trace_observation_point = point;
  }
  if (event.proto === 6) {
    flow.l4 = {
      TCP: {
        source_port: event.sourcePort,
        destination_port: event.destinationPort,
        flags: tcpFlags(event.tcpFlags),
      },
    };
  } else if (event.proto === 17) {
    flow.l4 = { UDP: { source_port: event.sourcePort, destination_port: event.destinationPort } };
  } else if (event.proto === 132) {
    flow.l4 = { SCTP: { source_port: event.sourcePort, destination_port: event.destinationPort } };
  }
  if (event.hook === "from-pod") flow.traffic_direction = "EGRESS";
  else if (event.hook === "to-pod") flow.traffic_direction = "INGRESS";
  const service = event.originalDestination
    ? context.serviceOf?.(event.originalDestination.address, event.originalDestination.port)
    : undefined;
  if (service) flow.destination_service = service;
  if (isTunnelled(event) && event.tunnelPeer) {
    const outbound = event.hook !== "from-tunnel";
    flow.tunnel = {
      protocol: "VXLAN",
      IP: outbound
        ? { source: "", destination: event.tunnelPeer, ipVersion: "IPv4" }
        : { source: event.tunnelPeer, destination: "", ipVersion: "IPv4" },
    };
  }
  return flow;
}
