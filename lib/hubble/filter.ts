/**
 * Hubble's FlowFilter semantics (https://github.com/cilium/cilium/tree/v1.18.4/pkg/hubble/filters):
 * a flow passes when it matches any whitelist filter (or there is none) and no blacklist filter;
 * within a filter every field that is set must match, and a field matches when any of its values
 * does. Filters are compiled once per request, so a malformed one is an error naming its field
 * before any flow is sent; fields we cannot evaluate (L7, DNS, workloads, CEL) are refused the same
 * way rather than silently matching everything.
 */
import { type Cidr, cidrContains, parseCidr } from "../cidr.js";
import type { HubbleEndpoint, HubbleFlow, TcpFlags } from "./flow.js";

export class FlowFilterError extends Error {
  constructor(
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`flow filter ${field}: ${message}`, options);
    this.name = "FlowFilterError";
  }
}

/** A FlowFilter as proto-loader decodes it (unset repeated fields may be absent). */
export type FlowFilterMessage = Record<string, unknown>;

type Predicate = (flow: HubbleFlow) => boolean;

const UNSUPPORTED = [
  "source_ip_xlated",
  "source_fqdn",
  "destination_fqdn",
  "source_workload",
  "destination_workload",
  "http_status_code",
  "dns_query",
  "http_method",
  "http_path",
  "http_url",
  "http_header",
  "node_labels",
  "trace_id",
];

function list<T>(filter: FlowFilterMessage, field: string): T[] {
  const value = filter[field];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new FlowFilterError(field, "must be a list");
  return value as T[];
}

function parseAddressOrCidr(field: string, text: string): Cidr | string {
  try {
    if (text.includes("/")) return parseCidr(text);
    parseCidr(`${text}/${text.includes(":") ? 128 : 32}`);
    return text;
  } catch (error) {
    throw new FlowFilterError(
      field,
      `${JSON.stringify(text)} is not an IP address or CIDR (${(error as Error).message})`,
      { cause: error },
    );
  }
}

function ipMatcher(field: string, values: string[]): (ip: string | undefined) => boolean {
  const parsed = values.map((value) => parseAddressOrCidr(field, value));
  return (ip) =>
    ip !== undefined &&
    ip !== "" &&
    parsed.some((entry) => (typeof entry === "string" ? entry === ip : safeContains(entry, ip)));
}

function safeContains(cidr: Cidr, ip: string): boolean {
  try {
    return cidrContains(cidr, ip);
  } catch {
    return false;
  }
}

/** "namespace/pod-name-prefix"; no namespace means "default" (as the hubble CLI sends it). */
function podMatcher(values: string[]): (endpoint: HubbleEndpoint) => boolean {
  const wanted = values.map((value) => {
    const slash = value.indexOf("/");
    return slash < 0
      ? { namespace: "default", prefix: value }
      : { namespace: value.slice(0, slash), prefix: value.slice(slash + 1) };
  });
  return (endpoint) =>
    wanted.some(
      ({ namespace, prefix }) =>
        (endpoint.namespace ?? "") === namespace && (endpoint.pod_name ?? "").startsWith(prefix),
    );
}

interface LabelTerm {
  source?: string;
  key: string;
  op: "exists" | "not-exists" | "in" | "not-in";
  values: string[];
}

function splitSelector(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = "";
  for (const char of text) {
    if (char === "(") depth++;
    if (char === ")") depth--;
    if (char === "," && depth === 0) {
      terms.push(current.trim());
      current = "";
    } else current += char;
  }
  terms.push(current.trim());
  return terms.filter((term) => term !== "");
}

function splitKey(raw: string): { source?: string; key: string } {
  // a source prefix is "k8s:", "any:", "reserved:", ... (keys themselves may contain dots and slashes)
  const match = /^([a-z0-9-]+):(.+)$/.exec(raw);
  if (match && match[1] !== "any") return { source: match[1], key: match[2] };
  return { key: match ? match[2] : raw };
}

/** A Kubernetes-style label selector over Cilium labels ("k8s:app=web,tier in (a,b),!canary"). */
export function parseLabelSelector(field: string, text: string): LabelTerm[] {
  const terms = splitSelector(text);
  if (terms.length === 0) throw new FlowFilterError(field, "empty label selector");
  return terms.map((term) => {
    let match = /^(!)?\s*([^\s=!()]+)$/.exec(term);
    if (match) return { ...splitKey(match[2]), op: match[1] ? "not-exists" : "exists", values: [] };
    match = /^([^\s=!()]+)\s*(==|=|!=)\s*([^\s=!(),]*)$/.exec(term);
    if (match) return { ...splitKey(match[1]), op: match[2] === "!=" ? "not-in" : "in", values: [match[3]] };
    match = /^([^\s=!()]+)\s+(in|notin)\s+\(([^()]*)\)$/.exec(term);
    if (match) {
      const values = match[3].split(",").map((value) => value.trim());
      return { ...splitKey(match[1]), op: match[2] === "in" ? "in" : "not-in", values };
    }
    throw new FlowFilterError(
      field,
      `bad label selector term ${JSON.stringify(term)} in ${JSON.stringify(text)}`,
    );
  });
}

function labelValues(labels: readonly string[], term: LabelTerm): string[] {
  const found: string[] = [];
  for (const label of labels) {
    const colon = label.indexOf(":");
    const source = colon >= 0 ? label.slice(0, colon) : "";
    const rest = colon >= 0 ? label.slice(colon + 1) : label;
    const equals = rest.indexOf("=");
    const key = equals >= 0 ? rest.slice(0, equals) : rest;
    if (key !== term.key || (term.source && term.source !== source)) continue;
    found.push(equals >= 0 ? rest.slice(equals + 1) : "");
  }
  return found;
}

function selectorMatches(terms: LabelTerm[], labels: readonly string[]): boolean {
  return terms.every((term) => {
    const values = labelValues(labels, term);
    switch (term.op) {
      case "exists":
        return values.length > 0;
      case "not-exists":
        return values.length === 0;
      case "in":
        return values.some((value) => term.values.includes(value));
      default:
        return !values.some((value) => term.values.includes(value));
    }
  });
}

function portsOf(flow: HubbleFlow): { source?: number; destination?: number } {
  const l4 = flow.l4?.TCP ?? flow.l4?.UDP ?? flow.l4?.SCTP;
  return l4 ? { source: l4.source_port, destination: l4.destination_port } : {};
}

function protocolOf(flow: HubbleFlow): string | undefined {
  if (flow.l4?.TCP) return "tcp";
  if (flow.l4?.UDP) return "udp";
  if (flow.l4?.SCTP) return "sctp";
  return undefined;
}

const PROTOCOLS = new Set(["tcp", "udp", "sctp", "icmp", "icmpv4", "icmpv6", "http", "dns", "kafka"]);

function parsePort(field: string, text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535)
    throw new FlowFilterError(field, `${JSON.stringify(text)} is not a port`);
  return port;
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*");
  return new RegExp(`^${escaped}$`);
}

const VERDICTS = new Set([
  "VERDICT_UNKNOWN",
  "FORWARDED",
  "DROPPED",
  "ERROR",
  "AUDIT",
  "REDIRECTED",
  "TRACED",
  "TRANSLATED",
]);

function compileOne(filter: FlowFilterMessage): Predicate {
  const checks: Predicate[] = [];
  for (const field of UNSUPPORTED) {
    if (list(filter, field).length > 0) throw new FlowFilterError(field, "is not supported by this server");
  }
  const experimental = filter.experimental as { cel_expression?: string[] } | undefined;
  if (experimental?.cel_expression?.length)
    throw new FlowFilterError("experimental.cel_expression", "is not supported by this server");

  const uuids = list<string>(filter, "uuid");
  if (uuids.length) checks.push((flow) => uuids.includes(flow.uuid));
  for (const [field, side] of [
    ["source_ip", "source"],
    ["destination_ip", "destination"],
  ] as const) {
    const values = list<string>(filter, field);
    if (values.length) {
      const matches = ipMatcher(field, values);
      checks.push((flow) => matches(flow.IP?.[side]));
    }
  }
  for (const [field, side] of [
    ["source_pod", "source"],
    ["destination_pod", "destination"],
  ] as const) {
    const values = list<string>(filter, field);
    if (values.length) {
      const matches = podMatcher(values);
      checks.push((flow) => matches(flow[side]));
    }
  }
  for (const [field, side] of [
    ["source_label", "source"],
    ["destination_label", "destination"],
  ] as const) {
    const selectors = list<string>(filter, field).map((text) => parseLabelSelector(field, text));
    if (selectors.length)
      checks.push((flow) => selectors.some((terms) => selectorMatches(terms, flow[side].labels ?? [])));
  }
  for (const [field, side] of [
    ["source_identity", "source"],
    ["destination_identity", "destination"],
  ] as const) {
    const values = list<number>(filter, field).map(Number);
    if (values.some((value) => !Number.isInteger(value) || value < 0))
      throw new FlowFilterError(field, "identities are unsigned integers");
    if (values.length) checks.push((flow) => values.includes(flow[side].identity));
  }
  for (const [field, side] of [
    ["source_cluster_name", "source"],
    ["destination_cluster_name", "destination"],
  ] as const) {
    const values = list<string>(filter, field);
    if (values.length) checks.push((flow) => values.includes(flow[side].cluster_name ?? ""));
  }
  const sourceServices = list<string>(filter, "source_service");
  if (sourceServices.length) checks.push(() => false); // we do not attribute sources to services
  const destinationServices = list<string>(filter, "destination_service");
  if (destinationServices.length) {
    checks.push((flow) => {
      const service = flow.destination_service;
      if (!service) return false;
      const name = `${service.namespace}/${service.name}`;
      return destinationServices.some((wanted) =>
        name.startsWith(wanted.includes("/") ? wanted : `default/${wanted}`),
      );
    });
  }
  const verdicts = list<string>(filter, "verdict");
  for (const verdict of verdicts) {
    if (!VERDICTS.has(verdict))
      throw new FlowFilterError("verdict", `unknown verdict ${JSON.stringify(verdict)}`);
  }
  if (verdicts.length) checks.push((flow) => verdicts.includes(flow.verdict));
  const dropReasons = list<string>(filter, "drop_reason_desc");
  if (dropReasons.length)
    checks.push((flow) => flow.drop_reason_desc !== undefined && dropReasons.includes(flow.drop_reason_desc));
  const eventTypes = list<{ type?: number; match_sub_type?: boolean; sub_type?: number }>(
    filter,
    "event_type",
  );
  if (eventTypes.length) {
    checks.push((flow) =>
      eventTypes.some(
        (wanted) =>
          (wanted.type ?? 0) === flow.event_type.type &&
          (!wanted.match_sub_type || (wanted.sub_type ?? 0) === flow.event_type.sub_type),
      ),
    );
  }
  const protocols = list<string>(filter, "protocol").map((value) => value.toLowerCase());
  for (const protocol of protocols) {
    if (!PROTOCOLS.has(protocol))
      throw new FlowFilterError("protocol", `unknown protocol ${JSON.stringify(protocol)}`);
  }
  if (protocols.length) checks.push((flow) => protocols.includes(protocolOf(flow) ?? ""));
  for (const [field, side] of [
    ["source_port", "source"],
    ["destination_port", "destination"],
  ] as const) {
    const ports = list<string>(filter, field).map((text) => parsePort(field, String(text)));
    if (ports.length) checks.push((flow) => ports.includes(portsOf(flow)[side] ?? -1));
  }
  const replies = list<boolean>(filter, "reply");
  if (replies.length) checks.push((flow) => replies.includes(flow.is_reply?.value ?? false));
  const tcpFlags = list<TcpFlags>(filter, "tcp_flags");
  if (tcpFlags.length) {
    checks.push((flow) => {
      const flags = flow.l4?.TCP?.flags;
      if (!flags) return false;
      return tcpFlags.some((wanted) =>
        Object.entries(wanted).every(([name, set]) => !set || flags[name as keyof TcpFlags] === true),
      );
    });
  }
  const nodeNames = list<string>(filter, "node_name").map(globToRegExp);
  if (nodeNames.length) checks.push((flow) => nodeNames.some((pattern) => pattern.test(flow.node_name)));
  const ipVersions = list<string>(filter, "ip_version");
  if (ipVersions.length)
    checks.push((flow) => flow.IP !== undefined && ipVersions.includes(flow.IP.ipVersion));
  const directions = list<string>(filter, "traffic_direction");
  if (directions.length)
    checks.push((flow) => directions.includes(flow.traffic_direction ?? "TRAFFIC_DIRECTION_UNKNOWN"));
  const interfaces = list<{ index?: number; name?: string }>(filter, "interface");
  if (interfaces.length) {
    checks.push((flow) =>
      interfaces.some(
        (wanted) =>
          (!wanted.index || wanted.index === flow.interface?.index) &&
          (!wanted.name || wanted.name === flow.interface?.name),
      ),
    );
  }
  return (flow) => checks.every((check) => check(flow));
}

export interface CompiledFilters {
  matches(flow: HubbleFlow): boolean;
}

/** Compiles a request's whitelist and blacklist; throws FlowFilterError naming the bad field. */
export function compileFlowFilters(
  whitelist: readonly FlowFilterMessage[] = [],
  blacklist: readonly FlowFilterMessage[] = [],
): CompiledFilters {
  const allow = whitelist.map(compileOne);
  const deny = blacklist.map(compileOne);
  return {
    matches: (flow) => (allow.length === 0 || allow.some((p) => p(flow))) && !deny.some((p) => p(flow)),
  };
}
