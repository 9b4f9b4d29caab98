import { spawn } from "node:child_process";
import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { inNetns } from "../../lib/exec.js";

/**
 * Invoking CNI plugins as a container runtime does (CNI spec 1.1, the way libcni does it): the
 * first network configuration file in the conf dir, each plugin of its list run in order for ADD
 * (with the previous plugin's result as `prevResult`), in reverse for DEL, the cached ADD result
 * as `prevResult` for CHECK and DEL; STATUS for lists of version 1.1.0 and later.
 */

export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  plugins: PluginConfig[];
  /** The file it came from. */
  source: string;
}

export interface PluginConfig {
  type: string;
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

export interface CniResult {
  cniVersion?: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number }[];
  routes?: unknown[];
  dns?: unknown;
  [key: string]: unknown;
}

export class CniPluginError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: string,
    message: string,
    readonly code?: number,
    options?: ErrorOptions,
  ) {
    super(`plugin type="${plugin}" failed (${command.toLowerCase()}): ${message}`, options);
    this.name = "CniPluginError";
  }
}

export const CONFIG_EXTENSIONS = [".conflist", ".conf", ".json"];

/** Compares dotted versions ("1.1.0" vs "1.0.0"). */
export function versionAtLeast(version: string, minimum: string): boolean {
  const a = version.split(".").map(Number);
  const b = minimum.split(".").map(Number);
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}

/** Parses one config file's text; a single-plugin `.conf` becomes a one-element list, as in libcni. */
export function parseNetworkConfig(text: string, source: string): NetworkConfigList {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new Error(`${source}: invalid JSON: ${(error as Error).message}`, { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null) throw new Error(`${source}: not a JSON object`);
  const cniVersion = typeof parsed.cniVersion === "string" ? parsed.cniVersion : "";
  const name = typeof parsed.name === "string" ? parsed.name : "";
  if (!cniVersion) throw new Error(`${source}: cniVersion is missing`);
  if (!name) throw new Error(`${source}: name is missing`);
  const plugins = Array.isArray(parsed.plugins)
    ? (parsed.plugins as PluginConfig[])
    : typeof parsed.type === "string"
      ? [parsed as PluginConfig]
      : [];
  if (plugins.length === 0) throw new Error(`${source}: no plugins`);
  for (const [index, plugin] of plugins.entries()) {
    if (typeof plugin?.type !== "string" || !plugin.type)
      throw new Error(`${source}: plugins[${index}].type is missing`);
  }
  return { cniVersion, name, disableCheck: parsed.disableCheck === true, plugins, source };
}

/** The file a runtime uses: the first by name with a CNI config extension. */
export function firstConfigFile(dir: string): string | undefined {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch (error) {
    // ENOENT: no config directory yet, as when no network plugin is installed; other errors are real
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    return undefined;
  }
  const file = entries.filter((f) => CONFIG_EXTENSIONS.some((ext) => f.endsWith(ext))).sort()[0];
  return file ? join(dir, file) : undefined;
}

export function findPluginBinary(type: string, binDirs: readonly string[]): string | undefined {
  for (const dir of binDirs) {
    const candidate = join(dir, type);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // ENOENT or EACCES: not in this directory, or not executable there; the next one may have it
    }
  }
  return undefined;
}

/** Loads and checks the node's network config; throws with the reason the network is not ready. */
export function loadNetworkConfig(confDir: string, binDirs: readonly string[]): NetworkConfigList {
  const file = firstConfigFile(confDir);
  if (!file) throw new Error(`no network config found in ${confDir}`);
  const config = parseNetworkConfig(readFileSync(file, "utf8"), file);
  for (const plugin of config.plugins) {
    if (!findPluginBinary(plugin.type, binDirs)) {
      throw new Error(`${file}: plugin "${plugin.type}" not found in ${binDirs.join(":")}`);
    }
  }
  return config;
}

export interface RuntimeContext {
  containerId: string;
  netnsPath: string;
  ifName: string;
  podNamespace: string;
  podName: string;
  podUid: string;
  /** Values for plugins that declare capabilities (e.g. portMappings for portmap). */
  capabilityArgs?: Record<string, unknown>;
}

/** CNI_ARGS as containerd/CRI-O pass them (IgnoreUnknown lets plugins skip keys they do not know). */
export function cniArgs(context: RuntimeContext): string {
  return [
    "IgnoreUnknown=1",
    `K8S_POD_NAMESPACE=${context.podNamespace}`,
    `K8S_POD_NAME=${context.podName}`,
    `K8S_POD_INFRA_CONTAINER_ID=${context.containerId}`,
    `K8S_POD_UID=${context.podUid}`,
  ].join(";");
}

export function pluginEnv(
  command: "ADD" | "DEL" | "CHECK" | "STATUS" | "VERSION",
  context: RuntimeContext | undefined,
  binDirs: readonly string[],
): Record<string, string> {
  const env: Record<string, string> = { CNI_COMMAND: command, CNI_PATH: binDirs.join(":") };
  if (context) {
    env.CNI_CONTAINERID = context.containerId;
    env.CNI_NETNS = context.netnsPath;
    env.CNI_IFNAME = context.ifName;
    env.CNI_ARGS = cniArgs(context);
  }
  return env;
}

/** The stdin of one plugin invocation: its config + the list's name/cniVersion (+ prevResult, runtimeConfig). */
export function pluginStdin(
  list: NetworkConfigList,
  plugin: PluginConfig,
  prevResult: CniResult | undefined,
  capabilityArgs: Record<string, unknown> = {},
): Record<string, unknown> {
  const config: Record<string, unknown> = { ...plugin, cniVersion: list.cniVersion, name: list.name };
  if (prevResult !== undefined) config.prevResult = prevResult;
  const runtimeConfig: Record<string, unknown> = {};
  for (const [capability, enabled] of Object.entries(plugin.capabilities ?? {})) {
    if (enabled && capabilityArgs[capability] !== undefined)
      runtimeConfig[capability] = capabilityArgs[capability];
  }
  if (Object.keys(runtimeConfig).length > 0) config.runtimeConfig = runtimeConfig;
  return config;
}

/** Pod IPs (without prefix length) from a result: addresses on the sandbox interface, IPv4 first. */
export function podIpsFromResult(result: CniResult, ifName = "eth0"): string[] {
  const interfaces = result.interfaces ?? [];
  const ips = (result.ips ?? [])
    .filter((ip) => {
      if (ip.interface === undefined) return true;
      const iface = interfaces[ip.interface];
      return iface === undefined || (iface.name === ifName && Boolean(iface.sandbox));
    })
    .map((ip) => ip.address.split("/")[0]);
  return [...new Set(ips)].sort((a, b) => Number(a.includes(":")) - Number(b.includes(":")));
}

/** Interprets a plugin's exit: the parsed result, or a CniPluginError with the plugin's own message. */
export function interpretPluginOutput(
  plugin: string,
  command: string,
  exitCode: number | null,
  stdout: string,
  stderr: string,
): CniResult | undefined {
  const trimmed = stdout.trim();
  if (exitCode !== 0) {
    let message = stderr.trim() || `exit code ${exitCode ?? "signal"}`;
    let code: number | undefined;
    if (trimmed) {
      try {
        const error = JSON.parse(trimmed) as { code?: number; msg?: string; details?: string };
        message = [error.msg, error.details].filter(Boolean).join(": ") || message;
        code = error.code;
      } catch {
        message = `${trimmed}${stderr.trim() ? ` (${stderr.trim()})` : ""}`;
      }
    }
    throw new CniPluginError(plugin, command, message, code);
  }
  if (!trimmed) {
    if (command === "ADD") throw new CniPluginError(plugin, command, "plugin returned no result");
    return undefined;
  }
  try {
    const parsed = JSON.parse(trimmed);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
      throw new Error("not a JSON object");
    return parsed as CniResult;
  } catch (error) {
    throw new CniPluginError(
      plugin,
      command,
      `invalid result JSON: ${(error as Error).message}: ${trimmed.slice(0, 200)}`,
      undefined,
      { cause: error },
    );
  }
}

export interface ExecPluginOptions {
  binary: string;
  /** Run the plugin in this named netns (tests whose kubelet logic runs outside the node netns). */
  netns?: string;
  /** The node's own /run (a lab node's file system is a directory): the plugin sees its entries at /run. */
  nodeRunDir?: string;
  env: Record<string, string>;
  stdin: string;
  timeoutMs?: number;
}

export function execPlugin(
  options: ExecPluginOptions,
): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const argv = inNetns(options.netns, inNodeRun(options.nodeRunDir, [options.binary]));
    const child = spawn(argv[0], argv.slice(1), {
      env: { ...process.env, ...options.env },
      stdio: ["pipe", "pipe", "pipe"],
      timeout: options.timeoutMs ?? 60_000,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ exitCode: code, stdout, stderr }));
    child.stdin.on("error", () => {
      // The plugin may exit without reading stdin; its exit status tells us what happened.
    });
    child.stdin.end(options.stdin);
  });
}

/**
 * argv running a plugin with the node's /run entries bound over the host's in a private mount
 * namespace: a plugin finds what the node's daemons put there (the agent's socket at
 * /var/run/clustermesh/agent.sock) at the path it would on a real node. /run/netns stays the
 * host's: the pods' network namespaces are there.
 */
export function inNodeRun(nodeRunDir: string | undefined, argv: string[]): string[] {
  if (!nodeRunDir) return argv;
  const script = [
    "set -e",
    'for d in "$1"/*; do',
    '  [ -d "$d" ] || continue',
    '  n=$(basename "$d")',
    '  [ "$n" = netns ] && continue',
    '  mkdir -p "/run/$n"',
    '  mount --bind "$d" "/run/$n"',
    "done",
    "shift",
    'exec "$@"',
  ].join("\n");
  return [
    "unshare",
    "--mount",
    "--propagation",
    "slave",
    "--",
    "sh",
    "-c",
    script,
    "cni",
    nodeRunDir,
    ...argv,
  ];
}

export class CniRuntime {
  constructor(
    readonly confDir: string,
    readonly binDirs: readonly string[],
    /** Where plugins run; the kubelet's own netns (the node's) when absent, as in production. */
    readonly pluginNetns?: string,
    /** A lab node's own /run (see inNodeRun); absent: the host's, as in production. */
    readonly nodeRunDir?: string,
  ) {}

  config(): NetworkConfigList {
    return loadNetworkConfig(this.confDir, this.binDirs);
  }

  private async invoke(
    list: NetworkConfigList,
    plugin: PluginConfig,
    command: "ADD" | "DEL" | "CHECK" | "STATUS",
    context: RuntimeContext | undefined,
    prevResult: CniResult | undefined,
  ): Promise<CniResult | undefined> {
    const binary = findPluginBinary(plugin.type, this.binDirs);
    if (!binary)
      throw new CniPluginError(plugin.type, command, `plugin binary not found in ${this.binDirs.join(":")}`);
    const stdin = JSON.stringify(pluginStdin(list, plugin, prevResult, context?.capabilityArgs));
    const { exitCode, stdout, stderr } = await execPlugin({
      binary,
      netns: this.pluginNetns,
      nodeRunDir: this.nodeRunDir,
      env: pluginEnv(command, context, this.binDirs),
      stdin,
    });
    return interpretPluginOutput(plugin.type, command, exitCode, stdout, stderr);
  }

  /** Runs ADD through the list; the last plugin's result is the network's result. */
  async add(list: NetworkConfigList, context: RuntimeContext): Promise<CniResult> {
    let result: CniResult | undefined;
    for (const plugin of list.plugins) {
      result = (await this.invoke(list, plugin, "ADD", context, result)) ?? result;
    }
    if (!result) throw new CniPluginError(list.plugins[0].type, "ADD", "no result");
    return result;
  }

  /** DEL in reverse order with the cached ADD result; every plugin runs, the first error is thrown. */
  async del(
    list: NetworkConfigList,
    context: RuntimeContext,
    cachedResult: CniResult | undefined,
  ): Promise<void> {
    let firstError: unknown;
    for (const plugin of [...list.plugins].reverse()) {
      try {
        await this.invoke(
          list,
          plugin,
          "DEL",
          context,
          versionAtLeast(list.cniVersion, "0.4.0") ? cachedResult : undefined,
        );
      } catch (error) {
        firstError ??= error;
      }
    }
    if (firstError) throw firstError;
  }

  async check(list: NetworkConfigList, context: RuntimeContext, cachedResult: CniResult): Promise<void> {
    if (list.disableCheck || !versionAtLeast(list.cniVersion, "0.4.0")) return;
    for (const plugin of list.plugins) await this.invoke(list, plugin, "CHECK", context, cachedResult);
  }

  /** CNI STATUS (1.1): throws when a plugin reports it cannot serve ADDs; lists older than 1.1 skip it. */
  async status(list: NetworkConfigList): Promise<void> {
    if (!versionAtLeast(list.cniVersion, "1.1.0")) return;
    for (const plugin of list.plugins) await this.invoke(list, plugin, "STATUS", undefined, undefined);
  }
}
