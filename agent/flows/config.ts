/** The agent's flow and Hubble flags (parsed with the others in agent/config.ts). */
import { join } from "node:path";
import { HUBBLE_SOCKET_NAME } from "../../lib/hubble/client.js";

export interface HubbleConfig {
  /** off: no flow events; on: drops, and connections aggregated like Cilium's "medium" monitor
   *  aggregation (a new TCP SYN/FIN/RST, else once per 5 s: bpf/include/dp_flow_agg.h); all: every packet */
  flows: "off" | "on" | "all";
  /** Hubble's observer API on a Unix socket (always, unless flows are off); default: beside the agent's socket */
  socketPath: string;
  /** and on TCP when set (Hubble's default is ":4244") */
  listenAddress?: string;
  /** recent flows kept for GetFlows */
  bufferSize: number;
  /** mutual TLS on the TCP listener: PEM files */
  tls?: { ca: string; cert: string; key: string };
}

export const HUBBLE_FLAG_OPTIONS = {
  "hubble-flows": { type: "string", default: "on" },
  "hubble-socket": { type: "string" },
  "hubble-listen-address": { type: "string", default: "" },
  "hubble-flow-buffer": { type: "string", default: "4096" },
  "hubble-tls-ca": { type: "string" },
  "hubble-tls-cert": { type: "string" },
  "hubble-tls-key": { type: "string" },
} as const;

export const HUBBLE_USAGE =
  "[--hubble-flows on|all|off] [--hubble-socket PATH] [--hubble-listen-address :4244] [--hubble-flow-buffer 4096]\n  [--hubble-tls-ca FILE --hubble-tls-cert FILE --hubble-tls-key FILE]";

export class HubbleConfigError extends Error {}

type Values = { [K in keyof typeof HUBBLE_FLAG_OPTIONS]?: string };

/** socketDir: where the socket goes by default (the agent socket's directory, which the lab and
 *  `meshctl observe` know) */
export function parseHubbleFlags(values: Values, socketDir: string): HubbleConfig {
  const flows = values["hubble-flows"] ?? "on";
  if (flows !== "off" && flows !== "on" && flows !== "all")
    throw new HubbleConfigError(`--hubble-flows: "${flows}" is not on, all or off`);
  const bufferText = values["hubble-flow-buffer"] ?? "4096";
  const bufferSize = Number(bufferText);
  if (!/^\d+$/.test(bufferText) || bufferSize < 1 || bufferSize > 1_048_576)
    throw new HubbleConfigError(`--hubble-flow-buffer: "${bufferText}" is not an integer in 1..1048576`);
  const listenAddress = values["hubble-listen-address"] || undefined;
  if (listenAddress && !/^(\[[0-9a-fA-F:]+\]|[0-9.]*|localhost):\d{1,5}$/.test(listenAddress))
    throw new HubbleConfigError(`--hubble-listen-address: "${listenAddress}" is not [HOST]:PORT`);
  const tlsFlags = [values["hubble-tls-ca"], values["hubble-tls-cert"], values["hubble-tls-key"]];
  const tlsCount = tlsFlags.filter(Boolean).length;
  if (tlsCount !== 0 && tlsCount !== 3)
    throw new HubbleConfigError("--hubble-tls-ca, --hubble-tls-cert and --hubble-tls-key go together");
  return {
    flows,
    socketPath: values["hubble-socket"] ?? join(socketDir, HUBBLE_SOCKET_NAME),
    ...(listenAddress ? { listenAddress } : {}),
    bufferSize,
    ...(tlsCount === 3
      ? { tls: { ca: tlsFlags[0] as string, cert: tlsFlags[1] as string, key: tlsFlags[2] as string } }
      : {}),
  };
}
