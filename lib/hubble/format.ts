/** One readable line per flow (like `hubble observe`'s compact output, with the clusters named). */
import type { HubbleEndpoint, HubbleFlow } from "./flow.js";
import { timestampToNs } from "./flow.js";

function endpointText(endpoint: HubbleEndpoint, ip: string | undefined, port: number | undefined): string {
  const where = endpoint.pod_name ? `${endpoint.namespace}/${endpoint.pod_name}` : (ip ?? "?");
  const cluster = endpoint.cluster_name ? `${endpoint.cluster_name}/` : "";
  const reserved = endpoint.labels?.find((label) => label.startsWith("reserved:"));
  const identity = reserved ? reserved.slice("reserved:".length) : `ID:${endpoint.identity}`;
  return `${cluster}${where}${port !== undefined ? `:${port}` : ""} (${identity})`;
}

function time(flow: HubbleFlow): string {
  const ns = timestampToNs(flow.time);
  return new Date(Number(ns / 1_000_000n)).toISOString().replace("T", " ").replace("Z", "");
}

export function formatFlow(flow: HubbleFlow, nodeName?: string): string {
  const l4 = flow.l4?.TCP ?? flow.l4?.UDP ?? flow.l4?.SCTP;
  const proto = flow.l4?.TCP ? "TCP" : flow.l4?.UDP ? "UDP" : flow.l4?.SCTP ? "SCTP" : "";
  const flags = flow.l4?.TCP?.flags
    ? Object.entries(flow.l4.TCP.flags)
        .filter(([, set]) => set)
        .map(([name]) => name)
        .join(", ")
    : "";
  const source = endpointText(flow.source, flow.IP?.source, l4?.source_port);
  const destination = endpointText(flow.destination, flow.IP?.destination, l4?.destination_port);
  const point = flow.trace_observation_point
    ? ` ${flow.trace_observation_point.toLowerCase().replaceAll("_", "-")}`
    : "";
  const verdict =
    flow.verdict === "DROPPED" ? `DROPPED (${flow.drop_reason_desc ?? "unknown reason"})` : flow.verdict;
  const service = flow.destination_service
    ? ` via service ${flow.destination_service.namespace}/${flow.destination_service.name}`
    : "";
  const detail = proto ? ` (${proto}${flags ? ` Flags: ${flags}` : ""})` : "";
  return `${time(flow)} [${nodeName ?? flow.node_name}]: ${source} -> ${destination}${service}${point} ${verdict}${detail}`;
}
