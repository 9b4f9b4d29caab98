/**
 * The state of the mesh's workloads in a cluster, as `cilium status` shows it: each DaemonSet's and
 * Deployment's desired/ready/available counts, each agent pod's readiness and node, and pods that
 * cannot pull their image. Used by `meshctl status` and `meshctl install --wait`.
 */
import { AppsV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { MESH_NAMESPACE } from "../api/rbac.js";
import { coreApi, isNotFound } from "../k8s/client.js";
import { InstallNames, selectorOf } from "./names.js";

export interface WorkloadCounts {
  name: string;
  kind: "DaemonSet" | "Deployment";
  present: boolean;
  desired: number;
  ready: number;
  available: number;
  updated: number;
  image?: string;
}

export interface PodState {
  name: string;
  node?: string;
  phase?: string;
  ready: boolean;
  /** Waiting reason of the first container not running (ErrImagePull, CrashLoopBackOff, …). */
  waiting?: string;
  image?: string;
}

export interface MeshWorkloadStatus {
  agent: WorkloadCounts;
  apiserver: WorkloadCounts;
  agentPods: PodState[];
  apiserverPods: PodState[];
}

export const IMAGE_PULL_FAILURES = [
  "ErrImagePull",
  "ImagePullBackOff",
  "ErrImageNeverPull",
  "InvalidImageName",
];

function podState(pod: V1Pod): PodState {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const waitingOne = statuses.find((s) => s.state?.waiting?.reason);
  return {
    name: pod.metadata?.name ?? "",
    node: pod.spec?.nodeName,
    phase: pod.status?.phase,
    ready: pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
    waiting: waitingOne?.state?.waiting?.reason,
    image: waitingOne?.image ?? pod.spec?.containers?.[0]?.image,
  };
}

async function pods(kc: KubeConfig, name: string): Promise<PodState[]> {
  const selector = Object.entries(selectorOf(name))
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  const list = await coreApi(kc).listNamespacedPod({ namespace: MESH_NAMESPACE, labelSelector: selector });
  return list.items.map(podState).sort((a, b) => (a.node ?? "").localeCompare(b.node ?? ""));
}

const absent = (name: string, kind: WorkloadCounts["kind"]): WorkloadCounts => ({
  name,
  kind,
  present: false,
  desired: 0,
  ready: 0,
  available: 0,
  updated: 0,
});

export async function meshWorkloadStatus(kc: KubeConfig): Promise<MeshWorkloadStatus> {
  const apps = kc.makeApiClient(AppsV1Api);
  const namespace = MESH_NAMESPACE;
  let agent = absent(InstallNames.agentDaemonSet, "DaemonSet");
  try {
    const ds = await apps.readNamespacedDaemonSet({ name: agent.name, namespace });
    // counts the controller has not yet observed for this generation are not the spec's
    const observed = (ds.status?.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 0);
    agent = {
      ...agent,
      present: true,
      desired: ds.status?.desiredNumberScheduled ?? 0,
      ready: observed ? (ds.status?.numberReady ?? 0) : 0,
      available: observed ? (ds.status?.numberAvailable ?? 0) : 0,
      updated: observed ? (ds.status?.updatedNumberScheduled ?? 0) : 0,
      image: ds.spec?.template.spec?.containers[0]?.image,
    };
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  let apiserver = absent(InstallNames.apiserverDeployment, "Deployment");
  try {
    const deploy = await apps.readNamespacedDeployment({ name: apiserver.name, namespace });
    const observed = (deploy.status?.observedGeneration ?? 0) >= (deploy.metadata?.generation ?? 0);
    apiserver = {
      ...apiserver,
      present: true,
      desired: deploy.spec?.replicas ?? 1,
      ready: observed ? (deploy.status?.readyReplicas ?? 0) : 0,
      available: observed ? (deploy.status?.availableReplicas ?? 0) : 0,
      updated: observed ? (deploy.status?.updatedReplicas ?? 0) : 0,
      image: deploy.spec?.template.spec?.containers[0]?.image,
    };
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  return {
    agent,
    apiserver,
    agentPods: agent.present ? await pods(kc, agent.name) : [],
    apiserverPods: apiserver.present ? await pods(kc, apiserver.name) : [],
  };
}

export function isReady(counts: WorkloadCounts): boolean {
  return (
    counts.present &&
    counts.desired > 0 &&
    counts.ready === counts.desired &&
    counts.available === counts.desired &&
    counts.updated === counts.desired
  );
}

/** Pods that cannot get their image, e.g. "kube-system/clustermesh-agent-x7k2 on c1-worker: ErrImagePull". */
export function imagePullFailures(status: MeshWorkloadStatus): PodState[] {
  return [...status.agentPods, ...status.apiserverPods].filter(
    (pod) => pod.waiting !== undefined && IMAGE_PULL_FAILURES.includes(pod.waiting),
  );
}
