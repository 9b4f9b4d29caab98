import type { KubeConfig } from "@kubernetes/client-node";
import { apiServerUrl } from "./control-plane.js";
import type { LabPlan, PlannedCluster } from "./plan.js";
import { LabJournal, listLabs } from "./state.js";

export interface LabCluster {
  journal: LabJournal;
  plan: LabPlan;
  cluster: PlannedCluster;
}

/** The lab cluster a kubeconfig points at (by API server URL), if it is one. */
export function findLabCluster(kc: KubeConfig): LabCluster | undefined {
  const server = kc.getCurrentCluster()?.server;
  for (const name of listLabs()) {
    const journal = LabJournal.open(name);
    if (!journal) continue;
    const { plan } = journal.snapshot;
    const cluster = plan.clusters.find((c) => apiServerUrl(c) === server);
    if (cluster) return { journal, plan, cluster };
  }
  return undefined;
}
