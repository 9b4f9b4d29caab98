import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import type { ProcessRef } from "../../lib/process.js";
import type { CniResult } from "./cni.js";

/**
 * The kubelet's on-disk record of what it created for each pod (netns, cgroup, CNI result,
 * process refs), written before the thing exists, so a restarted kubelet — or `lab down` — can
 * remove everything even after a crash. Layout under --state-dir:
 *   pods/<uid>.json                              the record
 *   pods/<uid>/                                  volumes, /etc files, container mount points
 *   logs/<namespace>_<name>_<uid>/<container>/<restart>.log   container output, CRI log format (log-format.ts)
 */

export interface PodRecord {
  uid: string;
  namespace: string;
  name: string;
  /** Absent for hostNetwork pods. */
  netns?: string;
  networkName?: string;
  cgroupDir: string;
  containerId: string;
  cniResult?: CniResult;
  /** Running containers' processes, by container name (`lab restart` and tests find them here). */
  processes: (ProcessRef & { container?: string })[];
}

export class StateStore {
  constructor(readonly dir: string) {
    mkdirSync(join(dir, "pods"), { recursive: true });
    mkdirSync(join(dir, "logs"), { recursive: true });
  }

  private recordPath(uid: string): string {
    return join(this.dir, "pods", `${uid}.json`);
  }

  savePod(record: PodRecord): void {
    const path = this.recordPath(record.uid);
    writeFileSync(`${path}.tmp`, JSON.stringify(record, null, 2));
    renameSync(`${path}.tmp`, path);
  }

  loadPod(uid: string): PodRecord | undefined {
    try {
      return JSON.parse(readFileSync(this.recordPath(uid), "utf8")) as PodRecord;
    } catch {
      // no record (ENOENT), or one cut short by a crash while written: either way nothing to resume
      return undefined;
    }
  }

  /** The pod's files: its volumes, /etc files and containers' mount points (./volumes.ts). */
  podDir(uid: string): string {
    return join(this.dir, "pods", uid);
  }

  removePod(uid: string): void {
    rmSync(this.podDir(uid), { recursive: true, force: true });
    rmSync(this.recordPath(uid), { force: true });
  }

  allPods(): PodRecord[] {
    return readdirSync(join(this.dir, "pods"))
      .filter((f) => f.endsWith(".json"))
      .flatMap((f) => {
        const record = this.loadPod(f.slice(0, -".json".length));
        return record ? [record] : [];
      });
  }

  podLogDir(pod: V1Pod): string {
    return join(this.dir, "logs", `${pod.metadata?.namespace}_${pod.metadata?.name}_${pod.metadata?.uid}`);
  }
}
