import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, KubeConfig, loadAllYaml, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { NodePaths } from "../lib/install/names.js";
import { applyObjects } from "../lib/k8s/apply.js";
import { isRunning, type ProcessRef, startDaemon, WaitAborted, waitFor } from "../lib/process.js";
import { CONTROL_PLANE_LABEL } from "./kubelet/node-status.js";
import type { ControlPlaneBinaries } from "./kubernetes/binaries.js";
import { startKubernetesControlPlane } from "./kubernetes/control-plane.js";
import { clusterDnsIp, corednsManifest, corefile } from "./kubernetes/coredns.js";
import { defaultKubeconfigPath } from "./kubernetes/kubeconfig.js";
import { hostPathMapArg, labNodeFileSystem } from "./node-files.js";
import type { LabPlan, PlannedCluster, PlannedNode } from "./plan.js";
import type { LabJournal } from "./state.js";

/** dist/ of this build: every lab component runs as `node dist/<component>/main.js`. */
export const DIST = join(dirname(fileURLToPath(import.meta.url)), "..");
export const API_SERVER_PORT = 6443;
export const KUBELET_PORT = 10250;

export function nodeDir(journal: LabJournal, node: string): string {
  return journal.path("nodes", node);
}

export function kubeContextName(plan: LabPlan, cluster: string): string {
  return `${plan.name}-${cluster}`;
}

export function apiServerUrl(cluster: PlannedCluster): string {
  return `https://${controlPlaneOf(cluster).ip}:${API_SERVER_PORT}`;
}

export function controlPlaneOf(cluster: PlannedCluster): PlannedNode {
  const node = cluster.nodes.find((n) => n.role === "control-plane");
  if (!node) throw new Error(`cluster ${cluster.name} has no control-plane node`);
  return node;
}

export interface StartedDaemon {
  ref: ProcessRef;
  logFile: string;
  what: string;
}

export function componentEnv(): NodeJS.ProcessEnv {
  return { ...process.env, MESH_LOG_LEVEL: process.env.MESH_LOG_LEVEL ?? "info" };
}

export function startComponent(
  journal: LabJournal,
  options: { role: string; cluster: string; node: PlannedNode; argv: string[]; logName: string },
): StartedDaemon {
  const logFile = journal.path("logs", options.logName);
  const argv = [process.execPath, "--enable-source-maps", ...options.argv];
  const ref = startDaemon({ argv, netns: options.node.netns, logFile, env: componentEnv() });
  journal.record({
    kind: "process",
    role: options.role,
    cluster: options.cluster,
    node: options.node.name,
    pid: ref.pid,
    startTime: ref.startTime,
    logFile,
    argv,
    netns: options.node.netns,
  });
  return { ref, logFile, what: `${options.role} on ${options.node.name}` };
}

export function httpsGet(
  url: string,
  tls: { ca: string; cert: string; key: string },
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, timeout: 2_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

export function aborting(daemon: StartedDaemon) {
  if (!isRunning(daemon.ref)) throw new WaitAborted(`${daemon.what} exited; see ${daemon.logFile}`);
}

export function componentKubeconfigPath(journal: LabJournal, cluster: string, name: string): string {
  return journal.path("clusters", cluster, "kubeconfig", `${name}.yaml`);
}

/** A component's kubeconfig file, its directory created (0700). */
function componentKubeconfig(journal: LabJournal, cluster: string, name: string): string {
  const file = componentKubeconfigPath(journal, cluster, name);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  return file;
}

export interface ControlPlaneOptions {
  journal: LabJournal;
  plan: LabPlan;
  cluster: PlannedCluster;
  cgroupRoot: string;
  /** Where Kubernetes' etcd keeps its data (tmpfs: throwaway lab data). */
  kubeEtcdDataDir: string;
  /** The lab's bpffs mount: each node's agent pins below <bpffs>/<node>. */
  bpffs: string;
  /** The node's image store file (the mesh image's layers, image/lab-layers.sh). */
  imageStore: string;
  /** Every lab node's name and address, as kind's docker network resolves node names. */
  nodeHostsFile: string;
  progress?: (line: string) => void;
  /** The built control-plane and CoreDNS binaries (built before anything was created). */
  binaries: { controlPlane: ControlPlaneBinaries; coredns: string };
}

/**
 * Brings up one cluster's Kubernetes — the real control plane (lab/kubernetes) on the control-plane
 * node, a kubelet on every node, CoreDNS — and merges a kubectl context for it: what `kind create
 * cluster` leaves, nodes NotReady until a CNI is installed (lab up then runs meshctl install).
 * meshctl is the cluster's administrator, as a kind user is.
 */
export async function startControlPlane(options: ControlPlaneOptions): Promise<{ context: string }> {
  const { journal, plan, cluster } = options;
  const controlPlane = controlPlaneOf(cluster);
  const context = kubeContextName(plan, cluster.name);
  const kubeconfigPath = defaultKubeconfigPath();
  journal.record({ kind: "kubeconfig-context", path: kubeconfigPath, context });
  const kube = await startKubernetesControlPlane({
    journal,
    clusterName: cluster.name,
    node: { name: controlPlane.name, ip: controlPlane.ip, netns: controlPlane.netns },
    nodes: cluster.nodes.map((n) => ({ name: n.name, ip: n.ip })),
    podSubnets: cluster.podSubnets,
    serviceSubnets: cluster.serviceSubnets,
    etcdDataDir: options.kubeEtcdDataDir,
    adminContext: { name: context, kubeconfigPath },
    progress: options.progress,
    binaries: options.binaries.controlPlane,
  });
  const adminKubeconfig = kube.kubeconfigs.admin;
  copyFileSync(adminKubeconfig, componentKubeconfig(journal, cluster.name, "meshctl"));
  const admin = new KubeConfig();
  admin.loadFromFile(adminKubeconfig);
  // Cluster DNS as kind has it (kubeadm's CoreDNS add-on); its pods start once nodes are Ready.
  const clusterDns = clusterDnsIp(cluster.serviceSubnets[0]);
  const coredns = corednsManifest({
    serviceSubnet: cluster.serviceSubnets[0],
    // no upstream: lab pods resolve cluster names only, nothing is forwarded off the machine
    // node names resolve in pods as through kind's docker DNS, from the lab's own list
    corefileText: corefile({ upstream: false, nodeHosts: true }),
    nodeHosts: readFileSync(options.nodeHostsFile, "utf8"),
    binary: options.binaries.coredns,
    // one replica (kubeadm: two): a lab node is a process, not a failure domain
    replicas: 1,
  });
  await applyObjects(admin, loadAllYaml(coredns));

  const kubelets: StartedDaemon[] = [];
  for (const node of cluster.nodes) {
    const fs = labNodeFileSystem(journal.path(), node.name, {
      bpffs: options.bpffs,
      cgroupRoot: options.cgroupRoot,
    });
    const nodeRoot = fs.nodeRoot as string;
    const kubeletPki = kube.pki.kubelets[node.name];
    const labels = Object.entries(node.labels).map(([k, v]) => `${k}=${v}`);
    kubelets.push(
      startComponent(journal, {
        role: "kubelet",
        cluster: cluster.name,
        node,
        logName: `${node.name}-kubelet.log`,
        argv: [
          join(DIST, "lab", "kubelet", "main.js"),
          `--kubeconfig=${kube.kubeconfigs[`kubelet-${node.name}`]}`,
          `--node-name=${node.name}`,
          `--node-ip=${node.ip}`,
          `--cluster-name=${cluster.name}`,
          `--cni-conf-dir=${join(nodeRoot, NodePaths.cniConfDir)}`,
          `--cni-bin-dir=${join(nodeRoot, NodePaths.cniBinDir)}`,
          `--node-root=${nodeRoot}`,
          `--host-path-map=${hostPathMapArg(fs)}`,
          `--image-store=${options.imageStore}`,
          `--node-hosts-file=${options.nodeHostsFile}`,
          `--netns-prefix=${plan.name}-p-`,
          `--cgroup-root=${join(options.cgroupRoot, node.name)}`,
          `--state-dir=${join(nodeDir(journal, node.name), "kubelet")}`,
          `--address=${node.ip}`,
          `--port=${KUBELET_PORT}`,
          `--tls-cert-file=${kubeletPki.cert}`,
          `--tls-private-key-file=${kubeletPki.key}`,
          `--client-ca-file=${kube.pki.ca.cert}`,
          `--cluster-dns=${clusterDns}`,
          ...(node.role === "control-plane" ? ["--control-plane"] : []),
          // kind untaints the control plane of a cluster without workers, so its workloads run there
          ...(node.role === "control-plane" && cluster.nodes.length === 1
            ? ["--schedulable-control-plane"]
            : []),
          ...(labels.length ? [`--node-labels=${labels.join(",")}`] : []),
        ],
      }),
    );
  }

  // Nodes register themselves through their kubelets, as in kind.
  const core = admin.makeApiClient(CoreV1Api);
  await waitFor(
    `every node of ${cluster.name} to register`,
    async () => {
      for (const kubelet of kubelets) aborting(kubelet);
      const names = new Set((await core.listNode()).items.map((n) => n.metadata?.name));
      return cluster.nodes.every((n) => names.has(n.name));
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  // kubeadm's mark-control-plane: NodeRestriction keeps kubelets from setting node-role labels.
  await core.patchNode(
    { name: controlPlane.name, body: { metadata: { labels: { [CONTROL_PLANE_LABEL]: "" } } } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
  return { context };
}
