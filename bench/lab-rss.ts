import { readFileSync } from "node:fs";
import { StateStore } from "../lab/kubelet/state.js";
import { MESH_POD_ROLES, meshPods } from "../lab/mesh-pods.js";
import type { LabJournal } from "../lab/state.js";
import { isRunning } from "../lib/process.js";

/** Resident memory of one process in MiB (0 once it exited: it holds none). */
export function rssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
}

export interface KindRss {
  count: number;
  mib: number;
}

/**
 * RSS by process kind over every cluster of a lab: the lab's own processes (control plane, kubelets)
 * from its journal, the mesh's containers (agent, clustermesh-apiserver, its etcd, …) from the
 * kubelets' pod records. CoreDNS and other pods are not counted.
 */
export async function labRssByKind(journal: LabJournal): Promise<Record<string, KindRss>> {
  const kinds: Record<string, KindRss> = {};
  const add = (kind: string, pid: number) => {
    kinds[kind] ??= { count: 0, mib: 0 };
    kinds[kind].count++;
    kinds[kind].mib += rssMiB(pid);
  };
  for (const resource of journal.snapshot.resources)
    if (resource.kind === "process" && isRunning(resource)) add(resource.role, resource.pid);
  const workloads = [...new Set(Object.values(MESH_POD_ROLES).map((role) => role.workload))];
  for (const cluster of journal.snapshot.plan.clusters) {
    for (const workload of workloads) {
      for (const pod of await meshPods(journal, cluster.name, { workload })) {
        const node = pod.spec?.nodeName;
        const uid = pod.metadata?.uid;
        if (!node || !uid) continue;
        const record = new StateStore(journal.path("nodes", node, "kubelet")).loadPod(uid);
        for (const process of record?.processes ?? [])
          if (isRunning(process)) add(`${workload}/${process.container ?? "?"}`, process.pid);
      }
    }
  }
  return kinds;
}
