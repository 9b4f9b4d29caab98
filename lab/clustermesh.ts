import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { KubeConfig } from "@kubernetes/client-node";
import { saveBundle } from "../certs/store.js";
import type { EnabledCluster } from "../lib/clustermesh/enable.js";
import { tlsFromFiles } from "../lib/etcd/client.js";
import { startEtcd, waitEtcdHealthy } from "../lib/etcd/launcher.js";
import { isRunning, stopProcess, waitFor } from "../lib/process.js";
import {
  aborting,
  apiServerUrl,
  componentKubeconfigPath,
  controlPlaneOf,
  DIST,
  startComponent,
} from "./control-plane.js";
import type { LabPlan, PlannedCluster } from "./plan.js";
import { LabJournal, listLabs, type ProcessResource } from "./state.js";

export const CLUSTERMESH_APISERVER_MAIN = join(DIST, "clustermesh-apiserver", "main.js");
export const CLUSTERMESH_HEALTH_PORT = 9880;

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

function clustermeshEtcdDataDir(plan: LabPlan, cluster: PlannedCluster): string {
  return join("/dev/shm", `clustermesh-${plan.name}`, cluster.name, "clustermesh-etcd");
}

function runningProcess(journal: LabJournal, role: string, cluster: string) {
  return journal.snapshot.resources.find(
    (r) =>
      r.kind === "process" &&
      r.role === role &&
      r.cluster === cluster &&
      isRunning({ pid: r.pid, startTime: r.startTime }),
  );
}

/**
 * "Exposes" an enabled cluster's clustermesh-apiserver in the lab: its own etcd on the control-plane
 * node at the NodePort (as a NodePort service would be reachable from other clusters' nodes), and
 * the clustermesh-apiserver process next to it. Idempotent.
 */
export async function startLabClusterMesh(
  lab: LabCluster,
  enabled: EnabledCluster,
  nodePort: number,
  progress: (line: string) => void,
): Promise<void> {
  const { journal, plan, cluster } = lab;
  const controlPlane = controlPlaneOf(cluster);
  const dir = journal.path("clusters", cluster.name, "clustermesh");
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  saveBundle(dir, "server", enabled.server);
  saveBundle(dir, "admin", enabled.admin);
  const adminFiles = { ca: join(dir, "ca.crt"), cert: join(dir, "admin.crt"), key: join(dir, "admin.key") };

  if (!runningProcess(journal, "clustermesh-etcd", cluster.name)) {
    const logFile = journal.path("logs", `${cluster.name}-clustermesh-etcd.log`);
    const etcdOptions = {
      name: `${cluster.name}-clustermesh`,
      netns: controlPlane.netns,
      listenAddress: controlPlane.ip,
      clientPort: nodePort,
      peerPort: nodePort + 1,
      dataDir: clustermeshEtcdDataDir(plan, cluster),
      logFile,
      tlsFiles: { cert: join(dir, "server.crt"), key: join(dir, "server.key"), ca: join(dir, "ca.crt") },
    };
    const server = startEtcd(etcdOptions);
    journal.record({
      kind: "process",
      role: "clustermesh-etcd",
      cluster: cluster.name,
      node: controlPlane.name,
      pid: server.process.pid,
      startTime: server.process.startTime,
      logFile,
      argv: server.argv,
      netns: etcdOptions.netns,
    });
    await waitEtcdHealthy(server, tlsFromFiles(adminFiles), { logFile });
  }

  if (runningProcess(journal, "clustermesh-apiserver", cluster.name)) return;
  const healthAddress = `${controlPlane.ip}:${CLUSTERMESH_HEALTH_PORT}`;
  const daemon = startComponent(journal, {
    role: "clustermesh-apiserver",
    cluster: cluster.name,
    node: controlPlane,
    logName: `${cluster.name}-clustermesh-apiserver.log`,
    argv: [
      CLUSTERMESH_APISERVER_MAIN,
      `--cluster-name=${cluster.name}`,
      `--cluster-id=${enabled.config.clusterId}`,
      `--max-connected-clusters=${enabled.config.maxConnectedClusters}`,
      `--kubeconfig=${componentKubeconfigPath(journal, cluster.name, "clustermesh-apiserver")}`,
      `--etcd-servers=https://${controlPlane.ip}:${nodePort}`,
      `--etcd-cafile=${adminFiles.ca}`,
      `--etcd-certfile=${adminFiles.cert}`,
      `--etcd-keyfile=${adminFiles.key}`,
      `--readyz-address=${healthAddress}`,
    ],
  });
  await waitFor(
    `clustermesh-apiserver of ${cluster.name} to be ready`,
    async () => {
      aborting(daemon);
      const response = await fetch(`http://${healthAddress}/readyz`, { signal: AbortSignal.timeout(2_000) });
      return response.status === 200;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
  progress(`clustermesh-apiserver of ${cluster.name} is ready (etcd https://${controlPlane.ip}:${nodePort})`);
}

/**
 * Undoes startLabClusterMesh after `meshctl clustermesh disable`: stops the cluster's
 * clustermesh-apiserver and its etcd (by PID), forgets them, and removes the etcd's data and the
 * saved certificates, so that a later enable (perhaps with another name or id) starts from nothing.
 */
export async function stopLabClusterMesh(lab: LabCluster, progress: (line: string) => void): Promise<void> {
  const { journal, plan, cluster } = lab;
  const processes = journal.snapshot.resources.filter(
    (r): r is ProcessResource =>
      r.kind === "process" &&
      r.cluster === cluster.name &&
      (r.role === "clustermesh-apiserver" || r.role === "clustermesh-etcd"),
  );
  for (const daemon of processes) {
    await stopProcess({ pid: daemon.pid, startTime: daemon.startTime });
    journal.forget(daemon);
  }
  rmSync(clustermeshEtcdDataDir(plan, cluster), { recursive: true, force: true });
  rmSync(journal.path("clusters", cluster.name, "clustermesh"), { recursive: true, force: true });
  if (processes.length)
    progress(`Stopped the clustermesh-apiserver and its etcd of lab cluster ${cluster.name}`);
}
