import { CommandError, run, runJson } from "../lib/exec.js";
import type { HostRoute } from "./plan.js";

/** Thin iproute2 applier for the lab topology. Every removal tolerates the object being gone already. */

function isGone(error: unknown): boolean {
  return (
    error instanceof CommandError &&
    /Cannot find device|No such file|No such process|does not exist|not found|Invalid argument/i.test(
      error.stderr,
    )
  );
}

async function ignoreGone(action: Promise<unknown>): Promise<void> {
  try {
    await action;
  } catch (error) {
    if (!isGone(error)) throw error;
  }
}

export async function createBridge(name: string, address: string): Promise<void> {
  await run(["ip", "link", "add", name, "type", "bridge"]);
  await run(["ip", "addr", "add", address, "dev", name]);
  await run(["ip", "link", "set", name, "up"]);
}

export async function linkExists(name: string, netns?: string): Promise<boolean> {
  try {
    await run(["ip", "link", "show", "dev", name], { netns });
    return true;
  } catch (error) {
    if (isGone(error)) return false;
    throw error;
  }
}

export async function deleteLink(name: string): Promise<void> {
  await ignoreGone(run(["ip", "link", "del", "dev", name]));
}

export async function listNetns(): Promise<string[]> {
  const list = await runJson<{ name: string }[]>(["ip", "-j", "netns", "list"]);
  return list.map((entry) => entry.name);
}

export async function createNetns(name: string): Promise<void> {
  await run(["ip", "netns", "add", name]);
  await run(["ip", "link", "set", "lo", "up"], { netns: name });
}

export async function netnsPids(name: string): Promise<number[]> {
  try {
    const out = await run(["ip", "netns", "pids", name]);
    return out.split(/\s+/).filter(Boolean).map(Number);
  } catch (error) {
    if (isGone(error)) return [];
    throw error;
  }
}

export async function deleteNetns(name: string): Promise<void> {
  await ignoreGone(run(["ip", "netns", "del", name]));
}

/** Connects a node namespace to the bridge: <hostInterface> (root, on the bridge) <-> eth0 (node). */
export async function attachNode(options: {
  netns: string;
  hostInterface: string;
  bridge: string;
  address: string;
}): Promise<void> {
  const { netns, hostInterface, bridge, address } = options;
  await run(["ip", "link", "add", hostInterface, "type", "veth", "peer", "name", "eth0", "netns", netns]);
  await run(["ip", "link", "set", hostInterface, "master", bridge, "up"]);
  await run(["ip", "addr", "add", address, "dev", "eth0"], { netns });
  await run(["ip", "link", "set", "eth0", "up"], { netns });
  // Nodes route their pods' traffic; the root namespace keeps forwarding off.
  await run(["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"], { netns });
}

function family(prefix: string): string {
  return prefix.includes(":") ? "-6" : "-4";
}

export async function addBlackhole(prefix: string): Promise<void> {
  await run(["ip", family(prefix), "route", "add", "blackhole", prefix]);
}

export async function deleteBlackhole(prefix: string): Promise<void> {
  await ignoreGone(run(["ip", family(prefix), "route", "del", "blackhole", prefix]));
}

export async function hostRoutes(): Promise<HostRoute[]> {
  const routes: HostRoute[] = [];
  for (const fam of ["-4", "-6"]) {
    const list = await runJson<{ dst: string; dev?: string; table?: string; type?: string }[]>([
      "ip",
      "-j",
      fam,
      "route",
      "show",
      "table",
      "all",
    ]);
    for (const route of list) {
      if (route.type === "broadcast" || route.type === "multicast") continue;
      routes.push({ dst: route.dst, dev: route.dev, table: route.table });
    }
  }
  return routes;
}
