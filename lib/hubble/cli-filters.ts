/**
 * `observe` flags → a GetFlowsRequest, as the hubble CLI builds it (hubble/cmd/observe/flows_filter.go):
 * --from-X and --to-X flags fill one filter; an "either end" flag (--pod, --namespace, --cluster, --ip) makes
 * two whitelist filters, one with it on the source side and one on the destination side, both
 * carrying every other flag.
 */
import type { FlowFilterMessage } from "./filter.js";
import { FlowFilterError } from "./filter.js";
import { nsToTimestamp } from "./flow.js";
import type { GetFlowsRequestMessage } from "./request.js";

export interface ObserveFlags {
  fromCluster?: string[];
  toCluster?: string[];
  cluster?: string[];
  fromPod?: string[];
  toPod?: string[];
  pod?: string[];
  namespace?: string[];
  fromIp?: string[];
  toIp?: string[];
  ip?: string[];
  fromLabel?: string[];
  toLabel?: string[];
  fromIdentity?: number[];
  toIdentity?: number[];
  verdict?: string[];
  protocol?: string[];
  port?: string[];
  toPort?: string[];
  type?: string[];
  node?: string[];
  follow?: boolean;
  last?: number;
  first?: number;
  /** a duration ago ("5m") or an RFC 3339 time */
  since?: string;
  until?: string;
}

const EVENT_TYPES: Record<string, number> = { drop: 1, trace: 4, "policy-verdict": 5 };

/** "30s", "5m", "2h" before now, or an absolute RFC 3339 time; ns since the epoch. */
export function parseTime(flag: string, text: string, nowMs = Date.now()): bigint {
  const relative = /^(\d+)(ms|s|m|h)$/.exec(text);
  if (relative) {
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[relative[2] as "ms" | "s" | "m" | "h"];
    return BigInt(nowMs - Number(relative[1]) * unit) * 1_000_000n;
  }
  const absolute = Date.parse(text);
  if (Number.isNaN(absolute))
    throw new FlowFilterError(flag, `"${text}" is neither a duration (30s, 5m) nor an RFC 3339 time`);
  return BigInt(absolute) * 1_000_000n;
}

function add(filter: FlowFilterMessage, field: string, values: readonly unknown[] | undefined): void {
  if (!values?.length) return;
  filter[field] = [...((filter[field] as unknown[]) ?? []), ...values];
}

export function observeRequest(flags: ObserveFlags, nowMs = Date.now()): GetFlowsRequestMessage {
  if (flags.first !== undefined && flags.last !== undefined)
    throw new FlowFilterError("first", "--first and --last exclude each other");
  if (flags.first !== undefined && flags.follow)
    throw new FlowFilterError("first", "--first and --follow exclude each other");
  const common: FlowFilterMessage = {};
  add(
    common,
    "verdict",
    flags.verdict?.map((verdict) => verdict.toUpperCase()),
  );
  add(common, "protocol", flags.protocol);
  add(common, "node_name", flags.node);
  add(
    common,
    "event_type",
    flags.type?.map((type) => {
      const code = EVENT_TYPES[type];
      if (code === undefined)
        throw new FlowFilterError("type", `"${type}" is not one of ${Object.keys(EVENT_TYPES).join(", ")}`);
      return { type: code };
    }),
  );
  const from: FlowFilterMessage = {};
  const to: FlowFilterMessage = {};
  add(from, "source_cluster_name", flags.fromCluster);
  add(to, "destination_cluster_name", flags.toCluster);
  add(from, "source_pod", flags.fromPod);
  add(to, "destination_pod", flags.toPod);
  add(from, "source_ip", flags.fromIp);
  add(to, "destination_ip", flags.toIp);
  add(from, "source_label", flags.fromLabel);
  add(to, "destination_label", flags.toLabel);
  add(from, "source_identity", flags.fromIdentity);
  add(to, "destination_identity", flags.toIdentity);
  add(to, "destination_port", flags.toPort);
  const either: Array<[string, string, readonly string[] | undefined]> = [
    ["source_cluster_name", "destination_cluster_name", flags.cluster],
    ["source_pod", "destination_pod", flags.pod],
    ["source_pod", "destination_pod", flags.namespace?.map((namespace) => `${namespace}/`)],
    ["source_ip", "destination_ip", flags.ip],
    ["source_port", "destination_port", flags.port],
  ];
  const hasEither = either.some(([, , values]) => values?.length);
  let whitelist: FlowFilterMessage[];
  if (hasEither) {
    const left: FlowFilterMessage = { ...common, ...from, ...to };
    const right: FlowFilterMessage = { ...common, ...from, ...to };
    for (const [sourceField, destinationField, values] of either) {
      add(left, sourceField, values);
      add(right, destinationField, values);
    }
    whitelist = [left, right];
  } else {
    const only = { ...common, ...from, ...to };
    whitelist = Object.keys(only).length ? [only] : [];
  }
  const request: GetFlowsRequestMessage = { whitelist, follow: flags.follow === true };
  if (flags.first !== undefined) {
    request.number = flags.first;
    request.first = true;
  } else if (flags.last !== undefined) request.number = flags.last;
  else if (!flags.follow && !flags.since) request.number = 20; // hubble's default: the last 20
  if (flags.since) request.since = nsToTimestamp(parseTime("since", flags.since, nowMs));
  if (flags.until) request.until = nsToTimestamp(parseTime("until", flags.until, nowMs));
  return request;
}
