/** `meshctl status` as text: one line per workload, then one per pod, like `cilium status`. Pure. */
import { isReady, type MeshWorkloadStatus, type WorkloadCounts } from "../../lib/install/workload-status.js";

export function workloadsHealthy(status: MeshWorkloadStatus): boolean {
  return isReady(status.agent) && isReady(status.apiserver);
}

function workloadLine(w: WorkloadCounts): string {
  if (!w.present) return `${w.kind} ${w.name}: not installed (meshctl install)`;
  const mark = isReady(w) ? "OK" : "not ready";
  return `${w.kind} ${w.name}: desired ${w.desired}, ready ${w.ready}, available ${w.available}, up-to-date ${w.updated} (${mark}); image ${w.image}`;
}

export function renderWorkloadStatus(status: MeshWorkloadStatus): string {
  const lines = [workloadLine(status.agent), workloadLine(status.apiserver)];
  for (const pod of [...status.agentPods, ...status.apiserverPods]) {
    const state = pod.ready
      ? "ready"
      : `not ready${pod.waiting ? ` (${pod.waiting})` : pod.phase ? ` (${pod.phase})` : ""}`;
    lines.push(`  ${pod.name} on ${pod.node ?? "(unscheduled)"}: ${state}`);
  }
  return `${lines.join("\n")}\n`;
}
