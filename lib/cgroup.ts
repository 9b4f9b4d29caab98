import { existsSync, readFileSync } from "node:fs";

/**
 * Where the cgroup2 hierarchy is mounted: /sys/fs/cgroup on pure-v2 hosts, /sys/fs/cgroup/unified
 * on hybrid ones (like this project's machines). Undefined when there is none.
 */
export function cgroup2Root(): string | undefined {
  if (existsSync("/sys/fs/cgroup/cgroup.controllers")) return "/sys/fs/cgroup";
  try {
    for (const line of readFileSync("/proc/self/mounts", "utf8").split("\n")) {
      const [, mountPoint, type] = line.split(" ");
      if (type === "cgroup2") return mountPoint;
    }
  } catch (error) {
    // ENOENT: no /proc mounted, so no cgroup2 mount to find; other errors are real
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  return undefined;
}
