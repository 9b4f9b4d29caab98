/** The agent's command line (the contract with `meshctl lab up`), parsed and checked. Pure. */
import { isIPv4 } from "node:net";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import type { EndpointAttachMode } from "../bpf/datapath/loader.js";
import { IPSEC_BACKEND_CHOICES, type IpsecBackendChoice } from "../lib/api/encryption.js";
import { parseDuration } from "../lib/clustermesh/lifecycle.js";
import { HUBBLE_FLAG_OPTIONS, HUBBLE_USAGE, type HubbleConfig, parseHubbleFlags } from "./flows/config.js";

export interface AgentConfig {
  kubeconfig: string;
  nodeName: string;
  clusterName: string;
  clusterId: number;
  /** A directory on a bpffs, private to this node: maps and links are pinned below it. */
  bpffsRoot: string;
  /** cgroup2 directory containing this node's pod cgroups: socket LB is attached here. */
  cgroupRoot: string;
  /** Unix socket for the CNI plugin and the status API. */
  socket: string;
  stateDir: string;
  metricsAddress: { host: string; port: number };
  /** Underlay MTU; pods get mtu - VXLAN_OVERHEAD (tunnel/tunnel.ts). */
  mtu: number;
  /** Underlay interface carrying the node IP and the VXLAN traffic. */
  underlayInterface: string;
  /** VXLAN UDP port. */
  tunnelPort: number;
  logLevel: string;
  /** Node-to-node encryption of pod traffic (the cluster's clustermesh-config `encryption`). */
  encryption: "none" | "wireguard" | "ipsec";
  /** IPsec backend: auto = kernel XFRM where the kernel has ESP, strongSwan userspace ESP elsewhere. */
  ipsecBackend: IpsecBackendChoice;
  /** Remote cluster unreachable longer than this → its service backends are withdrawn (0 = never). */
  clustermeshBackendTtlMs: number;
  /** No remote heartbeat for longer than this → reconnect. */
  clustermeshHeartbeatTimeoutMs: number;
  /** Flow events and Hubble's observer API (agent/flows/config.ts). */
  hubble: HubbleConfig;
  /** clsact filters (default) or tcx links on endpoints' veths (bpf/datapath/loader.ts says why). */
  endpointAttach: EndpointAttachMode;
}

export class ConfigError extends Error {}

export const DEFAULT_TUNNEL_PORT = 8472;
const CLUSTER_NAME = /^([a-z0-9][-a-z0-9]*)?[a-z0-9]$/;

export const USAGE = `usage: node dist/agent/main.js --kubeconfig FILE --node-name NAME --cluster-name NAME
  --cluster-id 1..255 --bpffs-root DIR --cgroup-root DIR --socket PATH --state-dir DIR
  --metrics-address IP:PORT [--mtu 1500] [--underlay-interface eth0] [--tunnel-port 8472]
  [--log-level info] [--encryption none|wireguard|ipsec]
  [--ipsec-backend auto|kernel-xfrm|libipsec] [--clustermesh-backend-ttl 30s] [--clustermesh-heartbeat-timeout 3m]
  [--endpoint-attach tc|tcx]
  ${HUBBLE_USAGE}`;

function parseMetricsAddress(text: string): { host: string; port: number } {
  const at = text.lastIndexOf(":");
  const host = text.slice(0, at);
  const port = Number(text.slice(at + 1));
  if (at <= 0 || !isIPv4(host) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(`--metrics-address: "${text}" is not IPv4:PORT`);
  }
  return { host, port };
}

function integer(flag: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new ConfigError(`${flag}: "${text}" is not an integer in ${min}..${max}`);
  }
  return value;
}

function duration(flag: string, text: string): number {
  const ms = parseDuration(text);
  if (ms === undefined)
    throw new ConfigError(`${flag}: "${text}" is not a duration (e.g. 30s, 500ms, 3m, 0)`);
  return ms;
}

/** Every flag once, with its default (the optional ones); the environment can set a few defaults
 *  so a lab's agents start with short timeouts. */
function flagOptions() {
  return {
    kubeconfig: { type: "string" },
    "node-name": { type: "string" },
    "cluster-name": { type: "string" },
    "cluster-id": { type: "string" },
    "bpffs-root": { type: "string" },
    "cgroup-root": { type: "string" },
    socket: { type: "string" },
    "state-dir": { type: "string" },
    "metrics-address": { type: "string" },
    mtu: { type: "string", default: "1500" },
    "underlay-interface": { type: "string", default: "eth0" },
    "tunnel-port": { type: "string", default: String(DEFAULT_TUNNEL_PORT) },
    "log-level": { type: "string", default: process.env.MESH_LOG_LEVEL ?? "info" },
    encryption: { type: "string", default: "none" },
    "ipsec-backend": { type: "string", default: "auto" },
    "clustermesh-backend-ttl": { type: "string", default: process.env.MESH_CLUSTERMESH_BACKEND_TTL ?? "30s" },
    "clustermesh-heartbeat-timeout": {
      type: "string",
      default: process.env.MESH_CLUSTERMESH_HEARTBEAT_TIMEOUT ?? "3m",
    },
    "endpoint-attach": { type: "string", default: "tc" },
    ...HUBBLE_FLAG_OPTIONS,
  } as const;
}

function encryptionMode(text: string): AgentConfig["encryption"] {
  if (text !== "none" && text !== "wireguard" && text !== "ipsec")
    throw new ConfigError(`--encryption: "${text}" is not none, wireguard or ipsec`);
  return text;
}

function endpointAttach(text: string): EndpointAttachMode {
  if (text !== "tc" && text !== "tcx") throw new ConfigError(`--endpoint-attach: "${text}" is not tc or tcx`);
  return text;
}

function ipsecBackend(text: string): IpsecBackendChoice {
  if (!(IPSEC_BACKEND_CHOICES as readonly string[]).includes(text)) {
    throw new ConfigError(
      `--ipsec-backend: "${text}" is not ${IPSEC_BACKEND_CHOICES.slice(0, -1).join(", ")} or ${IPSEC_BACKEND_CHOICES.at(-1)}`,
    );
  }
  return text as IpsecBackendChoice;
}

function clusterName(text: string): string {
  if (text.length > 32 || !CLUSTER_NAME.test(text))
    throw new ConfigError(
      `--cluster-name: "${text}" must match ${CLUSTER_NAME} and be at most 32 characters`,
    );
  return text;
}

function interfaceName(flag: string, text: string): string {
  if (text.length > 15) throw new ConfigError(`${flag}: longer than 15 characters`);
  return text;
}

export function parseAgentFlags(argv: readonly string[]): AgentConfig {
  let values: ReturnType<typeof parseFlags>;
  try {
    values = parseFlags(argv);
  } catch (error) {
    // parseArgs names the flag ("Unknown option '--bogus'"): that message is the one for the user
    throw new ConfigError((error as Error).message, { cause: error });
  }
  const required = (flag: keyof typeof values): string => {
    const value = values[flag];
    if (!value) throw new ConfigError(`--${flag} is required`);
    return value;
  };
  return {
    kubeconfig: required("kubeconfig"),
    nodeName: required("node-name"),
    clusterName: clusterName(required("cluster-name")),
    clusterId: integer("--cluster-id", required("cluster-id"), 1, 255),
    bpffsRoot: required("bpffs-root"),
    cgroupRoot: required("cgroup-root"),
    socket: required("socket"),
    stateDir: required("state-dir"),
    metricsAddress: parseMetricsAddress(required("metrics-address")),
    mtu: integer("--mtu", values.mtu, 1280, 65535),
    underlayInterface: interfaceName("--underlay-interface", values["underlay-interface"]),
    tunnelPort: integer("--tunnel-port", values["tunnel-port"], 1, 65535),
    logLevel: values["log-level"],
    encryption: encryptionMode(values.encryption),
    ipsecBackend: ipsecBackend(values["ipsec-backend"]),
    clustermeshBackendTtlMs: duration("--clustermesh-backend-ttl", values["clustermesh-backend-ttl"]),
    clustermeshHeartbeatTimeoutMs: duration(
      "--clustermesh-heartbeat-timeout",
      values["clustermesh-heartbeat-timeout"],
    ),
    hubble: hubble(values, dirname(required("socket"))),
    endpointAttach: endpointAttach(values["endpoint-attach"]),
  };
}

function hubble(values: Parameters<typeof parseHubbleFlags>[0], socketDir: string): HubbleConfig {
  try {
    return parseHubbleFlags(values, socketDir);
  } catch (error) {
    throw new ConfigError((error as Error).message, { cause: error });
  }
}

function parseFlags(argv: readonly string[]) {
  return parseArgs({ args: [...argv], strict: true, allowPositionals: false, options: flagOptions() }).values;
}
