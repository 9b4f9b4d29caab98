/** Shared set-up for the datapath's root tests and benchmarks: a private bpffs per run. */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runSync } from "../../lib/exec.js";

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
