import { readdirSync, readFileSync, readlinkSync } from "node:fs";

/**
 * inotify instances are limited per user (fs.inotify.max_user_instances, 128 on many distributions)
 * and every lab runs as root beside the other root processes. Measured on a 10-cluster lab: each
 * cluster's kube-apiserver holds 3 and its kube-controller-manager 6 (certificate and config
 * watchers); our node processes hold none. Past the limit, the next control plane fails at start
 * with "too many open files" — kind documents the same (https://kind.sigs.k8s.io/docs/user/known-issues/#pod-errors-due-to-too-many-open-files).
 */
export const INOTIFY_INSTANCES_PER_CLUSTER = 9;

/** The problem line when `clusters` more control planes would not fit, else undefined. Pure. */
export function inotifyProblem(clusters: number, used: number, limit: number): string | undefined {
  const needed = clusters * INOTIFY_INSTANCES_PER_CLUSTER;
  if (used + needed <= limit) return undefined;
  const suggested = Math.max(512, 2 ** Math.ceil(Math.log2(used + needed)));
  return `${clusters} clusters need about ${needed} inotify instances and ${used} of ${limit} (fs.inotify.max_user_instances) are in use; raise the limit with: sysctl -w fs.inotify.max_user_instances=${suggested}`;
}

/** inotify instances open on this host now (every process's fds, as root sees them). */
export function inotifyInstancesInUse(): number {
  let count = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // exited, or not ours to read
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === "anon_inode:inotify") count++;
      } catch {
        // closed meanwhile
      }
    }
  }
  return count;
}

export function inotifyLimit(): number {
  return Number(readFileSync("/proc/sys/fs/inotify/max_user_instances", "utf8").trim());
}
