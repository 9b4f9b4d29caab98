/**
 * The CNI plugin ↔ agent protocol, and the CNI spec 1.1 types both sides share
 * (https://github.com/containernetworking/cni/blob/main/SPEC.md). Imports nothing, so the plugin,
 * which imports only node built-ins and this file, starts fast — and can be rewritten in C.
 *
 * Transport: HTTP/1.1 over the agent's unix socket (`agentSocket` of the network config, default
 * DEFAULT_AGENT_SOCKET), one request per plugin run, JSON bodies:
 *
 *   POST /v1/cni/add|del|check|status|gc   body: AgentCniRequest (below)
 *     200  ADD: a CniResult; DEL, CHECK, STATUS, GC: `{}`
 *     4xx/5xx  a CniErrorBody (`{cniVersion, code, msg, details?}`, codes from CniErrorCode):
 *          503 for TryAgainLater / PluginNotAvailable, 500 for IoFailure and codes >= 100, 400 else.
 *          The plugin prints the body on stdout and exits 1, as the spec asks.
 *   GET /healthz   200 `{ok: true}`, or 503 `{ok: false, reason}` when the agent cannot serve ADDs
 *
 * When nothing listens on the socket the plugin answers TryAgainLater (11) itself. VERSION never
 * reaches the agent: the plugin answers it from SUPPORTED_CNI_VERSIONS. The same socket also serves
 * the agent's status document (GET /v1/status, see agent-status.ts).
 */

export const CNI_VERSION = "1.1.0";
export const SUPPORTED_CNI_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];
export const DEFAULT_AGENT_SOCKET = "/var/run/clustermesh/agent.sock";

/** Error codes from the CNI spec, section "Error". */
export const CniErrorCode = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodeFailure: 6,
  InvalidNetworkConfig: 7,
  TryAgainLater: 11,
  PluginNotAvailable: 50,
  LimitedConnectivity: 51,
} as const;

export interface CniErrorBody {
  cniVersion: string;
  code: number;
  msg: string;
  details?: string;
}

export class CniError extends Error {
  constructor(
    readonly code: number,
    msg: string,
    readonly details?: string,
    options?: ErrorOptions,
  ) {
    super(msg, options);
    this.name = "CniError";
  }

  toJSON(cniVersion = CNI_VERSION): CniErrorBody {
    return {
      cniVersion,
      code: this.code,
      msg: this.message,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface CniIpConfig {
  address: string;
  gateway?: string;
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIpConfig[];
  routes?: CniRoute[];
  dns?: { nameservers?: string[]; domain?: string; search?: string[]; options?: string[] };
}

/** The network configuration the runtime passes on stdin (one plugin's entry of a conflist). */
export interface NetworkConfig {
  cniVersion: string;
  name: string;
  type: string;
  /** Where the node's agent listens; the lab sets one per node. */
  agentSocket?: string;
  mtu?: number;
  prevResult?: CniResult;
  [field: string]: unknown;
}

export type CniCommand = "ADD" | "DEL" | "CHECK" | "STATUS" | "VERSION" | "GC";

/** Body of POST /v1/cni/<command> to the agent. */
export interface AgentCniRequest {
  command: Exclude<CniCommand, "VERSION">;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS parsed: K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_INFRA_CONTAINER_ID, K8S_POD_UID … */
  args: Record<string, string>;
  config: NetworkConfig;
}
