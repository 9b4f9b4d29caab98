import type { V1Pod } from "@kubernetes/client-node";
import { MESH_NAMESPACE } from "../lib/api/rbac.js";
import { startDaemon, stopProcess, waitFor } from "../lib/process.js";
import { componentEnv } from "./control-plane.js";
import { containerProcess, MESH_POD_ROLES, type MeshPodRole, meshCoreApi, meshPods } from "./mesh-pods.js";
import { LabJournal, type ProcessResource } from "./state.js";

export interface RestartOptions {
  name: string;
  role: string;
  node?: string;
  cluster?: string;
}

export interface Restarted {
  role: string;
  node: string;
  /** What now runs: "PID 123" or "pod clustermesh-agent-x2v9q". */
  now: string;
}

const POD_READY_TIMEOUT_MS = 120_000;

/**
 * Restarts a lab component, for trying and testing restarts without disruption. The mesh runs as
 * pods (meshctl install's): the agent's pod is deleted and its DaemonSet's replacement waited for,
 * as `kubectl delete pod` does it; the clustermesh-apiserver's or its etcd's container process is
 * stopped and the kubelet restarts it in the same pod (an etcd keeps its emptyDir). The control
 * plane's processes are stopped by PID and started again exactly as before.
 */
export async function restartComponent(options: RestartOptions): Promise<Restarted[]> {
  const journal = LabJournal.open(options.name);
  if (!journal) throw new Error(`no lab named "${options.name}"`);
  const podRole = MESH_POD_ROLES[options.role];
  return podRole ? restartMeshPods(journal, options, podRole) : restartProcesses(journal, options);
}

async function restartMeshPods(
  journal: LabJournal,
  options: RestartOptions,
  role: MeshPodRole,
): Promise<Restarted[]> {
  const clusters = journal.snapshot.plan.clusters
    .filter((c) => !options.cluster || c.name === options.cluster)
    .filter((c) => !options.node || c.nodes.some((n) => n.name === options.node));
  const restarted: Restarted[] = [];
  for (const cluster of clusters) {
    const pods = await meshPods(journal, cluster.name, role, options.node);
    for (const pod of pods) {
      restarted.push(
        role.container
          ? await restartContainer(journal, cluster.name, pod, role.container, options.role)
          : await replacePod(journal, cluster.name, pod, role, options.role),
      );
    }
  }
  if (restarted.length === 0) {
    throw new Error(
      `no ${options.role} pod${options.node ? ` on node ${options.node}` : ""} in lab "${options.name}" (is the mesh installed? kubectl get pods -n ${MESH_NAMESPACE})`,
    );
  }
  return restarted;
}

const isReady = (pod: V1Pod | undefined) =>
  pod?.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;

async function replacePod(
  journal: LabJournal,
  cluster: string,
  pod: V1Pod,
  role: MeshPodRole,
  roleName: string,
): Promise<Restarted> {
  const node = pod.spec?.nodeName ?? "";
  await meshCoreApi(journal, cluster).deleteNamespacedPod({
    namespace: MESH_NAMESPACE,
    name: pod.metadata?.name ?? "",
  });
  const replacement = await waitFor(
    `a new ${roleName} pod on ${node} to be ready`,
    async () =>
      (await meshPods(journal, cluster, role, node)).find(
        (p) => p.metadata?.uid !== pod.metadata?.uid && isReady(p),
      ),
    { timeoutMs: POD_READY_TIMEOUT_MS, intervalMs: 250 },
  );
  return { role: roleName, node, now: `pod ${replacement.metadata?.name}` };
}

async function restartContainer(
  journal: LabJournal,
  cluster: string,
  pod: V1Pod,
  container: string,
  roleName: string,
): Promise<Restarted> {
  const node = pod.spec?.nodeName ?? "";
  const name = pod.metadata?.name ?? "";
  const restarts = (p: V1Pod | undefined) =>
    p?.status?.containerStatuses?.find((c) => c.name === container)?.restartCount ?? 0;
  const before = restarts(pod);
  const running = containerProcess(journal, pod, container);
  if (!running) throw new Error(`container ${container} of pod ${name} is not running`);
  await stopProcess(running);
  const core = meshCoreApi(journal, cluster);
  await waitFor(
    `container ${container} of pod ${name} to run again`,
    async () => {
      const now = await core.readNamespacedPod({ namespace: MESH_NAMESPACE, name });
      const status = now.status?.containerStatuses?.find((c) => c.name === container);
      return restarts(now) > before && status?.ready === true;
    },
    { timeoutMs: POD_READY_TIMEOUT_MS, intervalMs: 250 },
  );
  const again = containerProcess(
    journal,
    await core.readNamespacedPod({ namespace: MESH_NAMESPACE, name }),
    container,
  );
  return {
    role: roleName,
    node,
    now: `container ${container} of pod ${name}${again ? ` (PID ${again.pid})` : ""}`,
  };
}

async function restartProcesses(journal: LabJournal, options: RestartOptions): Promise<Restarted[]> {
  const matches = journal.snapshot.resources.filter(
    (r): r is ProcessResource =>
      r.kind === "process" &&
      r.role === options.role &&
      (!options.node || r.node === options.node) &&
      (!options.cluster || r.cluster === options.cluster),
  );
  if (matches.length === 0) {
    throw new Error(
      `no ${options.role} process${options.node ? ` on node ${options.node}` : ""} in lab "${options.name}"`,
    );
  }
  const restarted: Restarted[] = [];
  for (const old of matches) {
    if (!old.argv)
      throw new Error(`${old.role} on ${old.node} was recorded without its command line; recreate the lab`);
    await stopProcess({ pid: old.pid, startTime: old.startTime });
    const ref = startDaemon({ argv: old.argv, netns: old.netns, logFile: old.logFile, env: componentEnv() });
    journal.replace(old, { ...old, pid: ref.pid, startTime: ref.startTime });
    restarted.push({ role: old.role, node: old.node ?? old.cluster ?? "?", now: `PID ${ref.pid}` });
  }
  return restarted;
}
