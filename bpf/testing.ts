/** Shared set-up for the datapath's root tests and benchmarks: a private bpffs per run. */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSync } from "../lib/exec.js";

export function uniqueSuffix(): string {
  return randomBytes(2).toString("hex");
}

export interface PrivateBpffs {
  path: string;
  /** Unmounts (which drops every pin in it) and removes the directory. */
  cleanup(): void;
}

/** Mounts a fresh bpffs on a temp dir, so pins never collide with other runs or the host's. */
export function mountPrivateBpffs(prefix = "cm-bpffs-"): PrivateBpffs {
  const path = mkdtempSync(join(tmpdir(), prefix));
  runSync(["mount", "-t", "bpf", "bpf", path]);
  return {
    path,
    cleanup() {
      try {
        runSync(["umount", path]);
      } finally {
        rmSync(path, { recursive: true, force: true });
      }
    },
  };
}

/** The cgroup v2 mount: /sys/fs/cgroup on a pure v2 host, /sys/fs/cgroup/unified on a hybrid one. */
export function cgroup2Root(): string {
  if (existsSync("/sys/fs/cgroup/cgroup.controllers")) return "/sys/fs/cgroup";
  if (existsSync("/sys/fs/cgroup/unified/cgroup.procs")) return "/sys/fs/cgroup/unified";
  throw new Error("no cgroup v2 mount found");
}

/** A dedicated child cgroup for one test run (BPF hooks must never go on the root). */
export function createTestCgroup(name: string): { path: string; cleanup(): void } {
  const path = join(cgroup2Root(), name);
  mkdirSync(path);
  return {
    path,
    cleanup() {
      // processes must have left it; rmdir fails otherwise and the test's own cleanup moves them out
      if (existsSync(path)) rmdirSync(path);
    },
  };
}

/** Runs a shell command inside a cgroup (and optionally a netns); the process joins before exec. */
export function inCgroupArgv(cgroupPath: string, argv: string[]): string[] {
  return ["sh", "-c", `echo $$ > '${cgroupPath}/cgroup.procs' && exec "$@"`, "sh", ...argv];
}
