/**
 * The node's WireGuard device: kernel WireGuard when `ip link add … type wireguard` works, else
 * wireguard-go (a TUN device) started inside the node's netns. wireguard-go's UAPI socket path is
 * global to the machine (not per netns), so interface names must be unique per machine: derive
 * them from a node-unique prefix with wireGuardInterfaceName() (lib/api/encryption.ts). The process is recorded by PID and
 * start time in the state dir, reused after an agent restart (peers survive, no traffic gap) and
 * stopped by that PID only. Addresses and routes belong to the caller (see routes.ts).
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { CommandError, run } from "../../../lib/exec.js";
import type { Logger } from "../../../lib/log.js";
import { silentLogger } from "../../../lib/log.js";
import {
  isRunning,
  type ProcessRef,
  startDaemon,
  stopProcess,
  WaitAborted,
  waitFor,
} from "../../../lib/process.js";
import { UapiClient, uapiSocketPath, type WireGuardConfigurator } from "./uapi.js";
import { WgToolConfigurator } from "./wg-tool.js";

export const WIREGUARD_PORT = 51871; // Cilium's
export const WIREGUARD_MTU = 1420; // 1500 - 80 bytes of IPv6+UDP+WireGuard overhead

export type WireGuardBackend = "kernel" | "userspace";

export function checkInterfaceName(ifname: string): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(ifname) || ifname === "." || ifname === "..") {
    throw new Error(`invalid interface name "${ifname}" (1-15 of [A-Za-z0-9_.-])`);
  }
}

export interface WireGuardDeviceOptions {
  ifname: string;
  /** Where the wireguard-go PID record and log live (the agent's state dir). */
  stateDir: string;
  /** Named netns to work in; undefined = the caller's own (the agent runs inside its node netns). */
  netns?: string;
  mtu?: number;
  /** Skip the kernel probe (tests; kernels whose WireGuard is broken). */
  forceUserspace?: boolean;
  wireguardGo?: string;
  log?: Logger;
}

interface LinkInfo {
  kind?: string;
  mtu: number;
}

async function linkInfo(ifname: string, netns?: string): Promise<LinkInfo | undefined> {
  try {
    const [link] = JSON.parse(await run(["ip", "-j", "-d", "link", "show", "dev", ifname], { netns })) as {
      mtu: number;
      linkinfo?: { info_kind?: string };
    }[];
    return link ? { kind: link.linkinfo?.info_kind, mtu: link.mtu } : undefined;
  } catch (error) {
    if (error instanceof CommandError && /does not exist/.test(error.stderr)) return undefined;
    throw error;
  }
}

/** Whether something accepts connections on the unix socket (a live wireguard-go). */
function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (!existsSync(path)) {
      resolve(false);
      return;
    }
    const socket = connect(path);
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

export class WireGuardDevice {
  private constructor(
    readonly ifname: string,
    readonly backend: WireGuardBackend,
    readonly configurator: WireGuardConfigurator,
    private readonly options: WireGuardDeviceOptions,
    private process: ProcessRef | undefined,
  ) {}

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Creates (or adopts after a restart) the device, sets MTU and brings it up. */
  static async ensure(options: WireGuardDeviceOptions): Promise<WireGuardDevice> {
    checkInterfaceName(options.ifname);
    const log = options.log ?? silentLogger();
    const { ifname, netns } = options;
    mkdirSync(options.stateDir, { recursive: true, mode: 0o700 });
    const recordPath = processRecordPath(options);
    let device: WireGuardDevice | undefined;

    const recorded = readProcessRecord(recordPath);
    if (recorded && isRunning(recorded) && (await socketAlive(uapiSocketPath(ifname)))) {
      device = new WireGuardDevice(ifname, "userspace", new UapiClient(ifname), options, recorded);
      log.info({ ifname, pid: recorded.pid }, "wireguard: adopted running wireguard-go");
    } else {
      if (recorded) rmSync(recordPath, { force: true });
      const existing = await linkInfo(ifname, netns);
      if (existing?.kind === "wireguard") {
        device = new WireGuardDevice(
          ifname,
          "kernel",
          new WgToolConfigurator(ifname, netns),
          options,
          undefined,
        );
        log.info({ ifname }, "wireguard: adopted kernel device");
      } else if (existing) {
        throw new Error(
          `interface ${ifname} exists and is not a WireGuard device we own (kind ${existing.kind})`,
        );
      } else if (!options.forceUserspace && (await tryKernelDevice(ifname, netns))) {
        device = new WireGuardDevice(
          ifname,
          "kernel",
          new WgToolConfigurator(ifname, netns),
          options,
          undefined,
        );
        log.info({ ifname, backend: "kernel" }, "wireguard: using the kernel's WireGuard");
      } else {
        const ref = await startWireGuardGo(options);
        device = new WireGuardDevice(ifname, "userspace", new UapiClient(ifname), options, ref);
        log.info(
          { ifname, backend: "userspace", pid: ref.pid },
          "wireguard: kernel WireGuard unavailable, started wireguard-go",
        );
      }
    }
    try {
      await run(["ip", "link", "set", "dev", ifname, "mtu", String(options.mtu ?? WIREGUARD_MTU), "up"], {
        netns,
      });
    } catch (error) {
      await device.stop();
      throw error;
    }
    return device;
  }

  /** Stops wireguard-go by its recorded PID (or deletes the kernel link) and removes what it left. */
  async stop(): Promise<void> {
    const { ifname, netns } = this.options;
    if (this.process) {
      await stopProcess(this.process);
      this.process = undefined;
    }
    if (await linkInfo(ifname, netns)) await run(["ip", "link", "del", "dev", ifname], { netns });
    if (this.backend === "userspace") rmSync(uapiSocketPath(ifname), { force: true });
    rmSync(processRecordPath(this.options), { force: true });
  }
}

function processRecordPath(options: WireGuardDeviceOptions): string {
  return join(options.stateDir, `wireguard-go.${options.ifname}.json`);
}

function readProcessRecord(path: string): ProcessRef | undefined {
  try {
    const value = JSON.parse(readFileSync(path, "utf8")) as ProcessRef;
    return typeof value.pid === "number" && typeof value.startTime === "string" ? value : undefined;
  } catch {
    // no record (ENOENT: never started) or a torn one: no process of ours to find
    return undefined;
  }
}

/** True when the kernel made the device; false when it has no WireGuard; other errors throw. */
async function tryKernelDevice(ifname: string, netns?: string): Promise<boolean> {
  try {
    await run(["ip", "link", "add", "dev", ifname, "type", "wireguard"], { netns });
    return true;
  } catch (error) {
    if (
      error instanceof CommandError &&
      /Unknown device type|not supported|No such device/i.test(error.stderr)
    ) {
      return false;
    }
    throw error;
  }
}

async function startWireGuardGo(options: WireGuardDeviceOptions): Promise<ProcessRef> {
  const { ifname, netns } = options;
  const socket = uapiSocketPath(ifname);
  if (await socketAlive(socket)) {
    throw new Error(
      `${socket} is served by another process: WireGuard interface names must be unique per machine`,
    );
  }
  rmSync(socket, { force: true }); // stale, from a wireguard-go that died
  const ref = startDaemon({
    argv: [options.wireguardGo ?? "wireguard-go", "-f", ifname],
    netns,
    logFile: join(options.stateDir, `wireguard-go.${ifname}.log`),
    env: { ...process.env, LOG_LEVEL: "error" },
  });
  writeFileSync(processRecordPath(options), JSON.stringify(ref), { mode: 0o600 });
  try {
    await waitFor(
      `wireguard-go ${ifname} UAPI socket`,
      async () => {
        if (!isRunning(ref))
          throw new WaitAborted(`wireguard-go for ${ifname} exited; see its log in ${options.stateDir}`);
        return (await socketAlive(socket)) && (await linkInfo(ifname, netns)) !== undefined;
      },
      { timeoutMs: 10_000, intervalMs: 20 },
    );
  } catch (error) {
    await stopProcess(ref);
    rmSync(processRecordPath(options), { force: true });
    rmSync(socket, { force: true });
    throw error;
  }
  return ref;
}
