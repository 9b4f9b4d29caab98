import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../../lib/exec.js";
import { waitFor } from "../../lib/process.js";

/**
 * The pod sandbox's kernel objects: a named network namespace (/run/netns/<name>) and a cgroup2
 * directory. Both are created and removed by name; a cgroup is emptied with cgroup.kill, which
 * only reaches processes we put there.
 */

/** cgroup2 mount point: pure v2 at /sys/fs/cgroup, else the hybrid /sys/fs/cgroup/unified. */
export function cgroup2Mount(): string {
  return existsSync("/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup" : "/sys/fs/cgroup/unified";
}

/** Netns name for a pod: prefix + the first 12 hex digits of its uid (fits `ip netns` and is unique enough). */
export function podNetnsName(prefix: string, podUid: string): string {
  return `${prefix}${podUid.replace(/-/g, "").slice(0, 12)}`;
}

export function podCgroupName(podUid: string): string {
  return `pod${podUid.replace(/-/g, "")}`;
}

export function netnsExists(name: string): boolean {
  return existsSync(`/run/netns/${name}`);
}

export async function createNetns(name: string): Promise<void> {
  if (netnsExists(name)) return;
  await run(["ip", "netns", "add", name]);
  // lo up: pods expect 127.0.0.1 to work (real runtimes bring it up too).
  await run(["ip", "link", "set", "lo", "up"], { netns: name });
}

export async function deleteNetns(name: string): Promise<void> {
  if (!netnsExists(name)) return;
  await run(["ip", "netns", "delete", name]);
}

export function assertCgroupRootSafe(root: string): void {
  const mount = cgroup2Mount();
  const normalized = root.replace(/\/+$/, "");
  if (!normalized.startsWith(`${mount}/`)) {
    throw new Error(
      `--cgroup-root ${root} must be a directory below the cgroup2 mount ${mount} (never its root)`,
    );
  }
}

export function createCgroup(root: string, name: string): string {
  assertCgroupRootSafe(root);
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function cgroupPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  } catch (error) {
    // ENOENT: the cgroup is gone, so it holds no process; other errors are real
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    return [];
  }
}

/** Kills whatever is left in the cgroup (SIGKILL) and removes it. */
export async function removeCgroup(dir: string): Promise<void> {
  if (!existsSync(dir)) return;
  if (cgroupPids(dir).length > 0) {
    if (existsSync(join(dir, "cgroup.kill"))) writeFileSync(join(dir, "cgroup.kill"), "1");
    else for (const pid of cgroupPids(dir)) killQuietly(pid);
    await waitFor(`cgroup ${dir} to be empty`, () => cgroupPids(dir).length === 0, {
      timeoutMs: 5_000,
      intervalMs: 20,
    });
  }
  await waitFor(
    `cgroup ${dir} to be removed`,
    () => {
      try {
        rmdirSync(dir);
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return true;
        throw error;
      }
    },
    { timeoutMs: 5_000, intervalMs: 20 },
  );
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch (error) {
    // ESRCH: exited between listing and killing; anything else (EPERM) must not pass silently
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
  }
}

/**
 * argv that joins the cgroup first, then enters the pod netns and execs the command, so the
 * command's PID is the one we spawned and everything it forks stays in the cgroup (`ip netns exec`
 * execs without forking).
 */
export function inPodArgv(options: { cgroupDir?: string; netns?: string; argv: string[] }): string[] {
  const entered = options.netns ? ["ip", "netns", "exec", options.netns, ...options.argv] : options.argv;
  if (!options.cgroupDir) return entered;
  return [
    "sh",
    "-c",
    'echo $$ > "$1" && shift && exec "$@"',
    "sh",
    join(options.cgroupDir, "cgroup.procs"),
    ...entered,
  ];
}
