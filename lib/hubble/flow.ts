/**
 * The subset of Hubble's flow.Flow message we produce, as the plain object @grpc/proto-loader
 * encodes (field names as in flow.proto, enums as their names, 64-bit integers as strings).
 * https://github.com/cilium/cilium/blob/v1.18.4/api/v1/flow/flow.proto
 */
export interface Timestamp {
  seconds: string;
  nanos: number;
}

export interface HubbleEndpoint {
  ID?: number;
  identity: number;
  cluster_name?: string;
  namespace?: string;
  labels?: string[];
  pod_name?: string;
}

export interface TcpFlags {
  FIN?: boolean;
  SYN?: boolean;
  RST?: boolean;
  PSH?: boolean;
  ACK?: boolean;
  URG?: boolean;
  ECE?: boolean;
  CWR?: boolean;
  NS?: boolean;
}

export interface Layer4 {
  TCP?: { source_port: number; destination_port: number; flags?: TcpFlags };
  UDP?: { source_port: number; destination_port: number };
  SCTP?: { source_port: number; destination_port: number };
  protocol?: "TCP" | "UDP" | "SCTP";
}

export type Verdict =
  | "VERDICT_UNKNOWN"
  | "FORWARDED"
  | "DROPPED"
  | "ERROR"
  | "AUDIT"
  | "REDIRECTED"
  | "TRACED"
  | "TRANSLATED";

export interface HubbleFlow {
  time: Timestamp;
  uuid: string;
  verdict: Verdict;
  drop_reason?: number;
  drop_reason_desc?: string;
  IP?: { source: string; destination: string; ipVersion: "IPv4" | "IPv6" | "IP_NOT_USED" };
  l4?: Layer4;
  tunnel?: { protocol: "VXLAN"; IP?: { source: string; destination: string; ipVersion: "IPv4" } };
  source: HubbleEndpoint;
  destination: HubbleEndpoint;
  Type: "L3_L4";
  node_name: string;
  event_type: { type: number; sub_type: number };
  destination_service?: { name: string; namespace: string };
  traffic_direction?: "TRAFFIC_DIRECTION_UNKNOWN" | "INGRESS" | "EGRESS";
  trace_observation_point?: string;
  is_reply?: { value: boolean };
  interface?: { index: number; name?: string };
  Summary?: string;
}

/** Cilium's monitor message types (pkg/monitor/api/types.go), the `event_type.type` of a flow. */
export const MonitorMessageType = { Drop: 1, Trace: 4, PolicyVerdict: 5 } as const;

export function timestampToNs(time: Timestamp): bigint {
  return BigInt(time.seconds) * 1_000_000_000n + BigInt(time.nanos);
}

export function nsToTimestamp(ns: bigint): Timestamp {
  return { seconds: (ns / 1_000_000_000n).toString(), nanos: Number(ns % 1_000_000_000n) };
}
