import {
  type AgentCniRequest,
  type CniCommand,
  CniError,
  CniErrorCode,
  type NetworkConfig,
  SUPPORTED_CNI_VERSIONS,
} from "../lib/api/cni-protocol.js";

const COMMANDS: CniCommand[] = ["ADD", "DEL", "CHECK", "STATUS", "VERSION", "GC"];

export function parseCniArgs(text: string | undefined): Record<string, string> {
  const args: Record<string, string> = {};
  if (!text) return args;
  for (const pair of text.split(";")) {
    if (!pair) continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) {
      throw new CniError(CniErrorCode.InvalidEnvironment, `CNI_ARGS: "${pair}" is not KEY=VALUE`);
    }
    args[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return args;
}

export function parseCommand(env: NodeJS.ProcessEnv): CniCommand {
  const command = env.CNI_COMMAND;
  if (!command) throw new CniError(CniErrorCode.InvalidEnvironment, "CNI_COMMAND is not set");
  if (!COMMANDS.includes(command as CniCommand)) {
    throw new CniError(
      CniErrorCode.InvalidEnvironment,
      `CNI_COMMAND: unknown command "${command}"`,
      COMMANDS.join(", "),
    );
  }
  return command as CniCommand;
}

export function parseNetworkConfig(stdin: string): NetworkConfig {
  let config: unknown;
  try {
    config = JSON.parse(stdin);
  } catch (error) {
    throw new CniError(
      CniErrorCode.DecodeFailure,
      "network configuration on stdin is not JSON",
      (error as Error).message,
    );
  }
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new CniError(CniErrorCode.DecodeFailure, "network configuration on stdin must be a JSON object");
  }
  const record = config as Record<string, unknown>;
  for (const field of ["cniVersion", "name", "type"]) {
    if (typeof record[field] !== "string" || record[field] === "") {
      throw new CniError(
        CniErrorCode.InvalidNetworkConfig,
        `network configuration: "${field}" is required (a string)`,
      );
    }
  }
  if (!SUPPORTED_CNI_VERSIONS.includes(record.cniVersion as string)) {
    throw new CniError(
      CniErrorCode.IncompatibleVersion,
      `network configuration: cniVersion "${record.cniVersion}" is not supported`,
      `supported: ${SUPPORTED_CNI_VERSIONS.join(", ")}`,
    );
  }
  if (record.agentSocket !== undefined && typeof record.agentSocket !== "string") {
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      'network configuration: "agentSocket" must be a string',
    );
  }
  if (record.mtu !== undefined && (!Number.isInteger(record.mtu) || (record.mtu as number) < 576)) {
    throw new CniError(
      CniErrorCode.InvalidNetworkConfig,
      'network configuration: "mtu" must be an integer >= 576',
    );
  }
  return record as NetworkConfig;
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new CniError(CniErrorCode.InvalidEnvironment, `${name} is not set`);
  return value;
}

/**
 * Turns the runtime's environment and stdin into a request for the agent, checking what the spec
 * requires per command (DEL and CHECK may omit CNI_NETNS; STATUS needs only the config).
 */
export function buildAgentRequest(
  command: Exclude<CniCommand, "VERSION">,
  env: NodeJS.ProcessEnv,
  config: NetworkConfig,
): AgentCniRequest {
  if (command === "STATUS" || command === "GC") {
    return { command, containerId: "", netns: "", ifname: "", args: {}, config };
  }
  const containerId = required(env, "CNI_CONTAINERID");
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(containerId)) {
    throw new CniError(
      CniErrorCode.InvalidEnvironment,
      `CNI_CONTAINERID: "${containerId}" has invalid characters`,
    );
  }
  const ifname = required(env, "CNI_IFNAME");
  if (ifname.length > 15 || /[/\s:]/.test(ifname) || ifname === "." || ifname === "..") {
    throw new CniError(
      CniErrorCode.InvalidEnvironment,
      `CNI_IFNAME: "${ifname}" is not a valid interface name`,
    );
  }
  const netns = command === "ADD" ? required(env, "CNI_NETNS") : (env.CNI_NETNS ?? "");
  return { command, containerId, netns, ifname, args: parseCniArgs(env.CNI_ARGS), config };
}
