import { CoreV1Api, type V1Pod } from "@kubernetes/client-node";
import { MESH_NAMESPACE } from "../lib/api/rbac.js";
import { InstallNames, selectorOf } from "../lib/install/names.js";
import { kubeConfigFor } from "../lib/k8s/client.js";
import { isRunning, type ProcessRef } from "../lib/process.js";
import { componentKubeconfigPath } from "./control-plane.js";
import { StateStore } from "./kubelet/state.js";
import type { LabJournal } from "./state.js";

/**
 * The mesh's pods in a lab (meshctl install's): which pod and container a lab role is, and the
 * process of a running container, read from the pod record of the kubelet of its node. For
 * `meshctl lab restart` and for tests that stop a component (SIGSTOP) as a hung process would.
 */

export interface MeshPodRole {
  /** The workload's pods: the DaemonSet's or the Deployment's selector. */
  workload: string;
  /** The container; absent: the role is the whole pod (restart deletes it). */
  container?: string;
}

export const MESH_POD_ROLES: Record<string, MeshPodRole> = {
  agent: { workload: InstallNames.agentDaemonSet },
  "clustermesh-apiserver": { workload: InstallNames.apiserverDeployment, container: "apiserver" },
  "clustermesh-etcd": { workload: InstallNames.apiserverDeployment, container: "etcd" },
};

export function meshCoreApi(journal: LabJournal, cluster: string): CoreV1Api {
  return kubeConfigFor(undefined, componentKubeconfigPath(journal, cluster, "meshctl")).makeApiClient(
    CoreV1Api,
  );
}

/** The running pods of the role's workload in the cluster, optionally only on one node. */
export async function meshPods(
  journal: LabJournal,
  cluster: string,
  role: MeshPodRole,
  node?: string,
): Promise<V1Pod[]> {
  const selector = Object.entries(selectorOf(role.workload))
    .map(([key, value]) => `${key}=${value}`)
    .join(",");
  const { items } = await meshCoreApi(journal, cluster).listNamespacedPod({
    namespace: MESH_NAMESPACE,
    labelSelector: selector,
    ...(node ? { fieldSelector: `spec.nodeName=${node}` } : {}),
  });
  return items.filter((pod) => !pod.metadata?.deletionTimestamp);
}

/** The process of a running container, from its node's kubelet records. */
export function containerProcess(journal: LabJournal, pod: V1Pod, container: string): ProcessRef | undefined {
  const node = pod.spec?.nodeName;
  const uid = pod.metadata?.uid;
  if (!node || !uid) return undefined;
  const record = new StateStore(journal.path("nodes", node, "kubelet")).loadPod(uid);
  const process = record?.processes.find((p) => p.container === container);
  return process && isRunning(process) ? { pid: process.pid, startTime: process.startTime } : undefined;
}
