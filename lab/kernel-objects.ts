import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { run } from "../lib/exec.js";
import { waitFor } from "../lib/process.js";

/** A private bpffs instance for one lab: its pins are invisible to, and cannot collide with, anyone else's. */
export async function mountBpffs(path: string): Promise<void> {
  mkdirSync(path, { recursive: true, mode: 0o700 });
  await run(["mount", "-t", "bpf", "bpf", path]);
}

export function isMountPoint(path: string): boolean {
  try {
    return readFileSync("/proc/self/mounts", "utf8")
      .split("\n")
      .some((line) => line.split(" ")[1] === path);
  } catch {
    return false;
  }
}

// The kernel's BPF preload puts these iterator files into every bpffs root; they cannot be unlinked.
const BPFFS_BUILTINS = new Set(["maps.debug", "progs.debug"]);

/** Unpins everything (pinned links outlive their netns, so they must be removed explicitly), then unmounts. */
export async function unmountBpffs(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (isMountPoint(path)) {
    for (const entry of readdirSync(path)) {
      if (!BPFFS_BUILTINS.has(entry)) rmSync(join(path, entry), { recursive: true, force: true });
    }
    await run(["umount", path]);
  }
  rmSync(path, { recursive: true, force: true });
}

export function createCgroup(path: string): void {
  mkdirSync(path, { recursive: true });
}

function cgroupProcs(path: string): number[] {
  try {
    return readFileSync(join(path, "cgroup.procs"), "utf8").split("\n").filter(Boolean).map(Number);
  } catch (error) {
    // ENOENT: the cgroup is gone, so it holds no process; other errors are real
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    return [];
  }
}

/**
 * Removes a cgroup subtree bottom-up. Processes still inside belong to the lab (pods of a crashed
 * pod runner): they are killed by PID first, since a cgroup with members cannot be removed.
 */
export async function removeCgroupTree(path: string): Promise<void> {
  if (!existsSync(path)) return;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) await removeCgroupTree(join(path, entry.name));
  }
  for (const pid of cgroupProcs(path)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch (error) {
      // ESRCH: exited between listing and killing; anything else (EPERM) must not pass silently
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
    }
  }
  await waitFor(`cgroup ${path} to empty`, () => cgroupProcs(path).length === 0, { timeoutMs: 5_000 });
  rmdirSync(path);
}
