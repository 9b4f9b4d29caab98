import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api, KubeConfig, loadAllYaml, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import type { IpsecBackendChoice } from "../lib/api/encryption.js";
import { type ComponentAccess, MESH_ACCESS, rbacObjects, serviceAccountUser } from "../lib/api/rbac.js";
import { cniPluginBinary } from "../lib/cni-plugin.js";
import { applyObjects } from "../lib/k8s/apply.js";
import { isRunning, type ProcessRef, startDaemon, WaitAborted, waitFor } from "../lib/process.js";
import { CONTROL_PLANE_LABEL } from "./kubelet/node-status.js";
import type { ControlPlaneBinaries } from "./kubernetes/binaries.js";
import { startKubernetesControlPlane } from "./kubernetes/control-plane.js";
import { clusterDnsIp, corednsManifest, corefile } from "./kubernetes/coredns.js";
import { defaultKubeconfigPath, writeKubeconfig } from "./kubernetes/kubeconfig.js";
import { issueKubernetesClient } from "./kubernetes/pki.js";
import type { LabPlan, PlannedCluster, PlannedNode } from "./plan.js";
import type { LabJournal } from "./state.js";

/** dist/ of this build: every lab component runs as `node dist/<component>/main.js`. */
export const DIST = join(dirname(fileURLToPath(import.meta.url)), "..");
export const API_SERVER_PORT = 6443;
export const KUBELET_PORT = 10250;
const AGENT_MAIN = join(DIST, "agent", "main.js");

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

/** Where a node's CNI configuration and plugins live; the kubelet reads them, the agent serves them. */
export function cniPaths(journal: LabJournal, node: string) {
  const base = join(nodeDir(journal, node), "cni");
  return {
    confDir: join(base, "net.d"),
    binDir: join(base, "bin"),
    agentSocket: join(nodeDir(journal, node), "agent.sock"),
  };
}

function installCni(journal: LabJournal, node: PlannedNode): void {
  const { confDir, binDir, agentSocket } = cniPaths(journal, node.name);
  mkdirSync(confDir, { recursive: true });
  mkdirSync(binDir, { recursive: true });
  const plugin = join(binDir, "clustermesh");
  copyFileSync(cniPluginBinary(), plugin);
  chmodSync(plugin, 0o755);
  writeFileSync(
    join(confDir, "10-clustermesh.conflist"),
    `${JSON.stringify(
      { cniVersion: "1.1.0", name: "clustermesh", plugins: [{ type: "clustermesh", agentSocket }] },
      null,
      2,
    )}\n`,
  );
}

export interface ControlPlaneOptions {
  journal: LabJournal;
  plan: LabPlan;
  cluster: PlannedCluster;
  cgroupRoot: string;
  /** Where Kubernetes' etcd keeps its data (tmpfs: throwaway lab data). */
  kubeEtcdDataDir: string;
  /** Node-to-node encryption mode every agent runs with. */
  encryption?: "none" | "wireguard" | "ipsec";
  /** IPsec only: the agents' `--ipsec-backend` (default auto: the ESP probe decides). */
  ipsecBackend?: IpsecBackendChoice;
  progress?: (line: string) => void;
  /** The built control-plane and CoreDNS binaries (built before anything was created). */
  binaries: { controlPlane: ControlPlaneBinaries; coredns: string };
}

/**
 * Brings up one cluster's Kubernetes — the real control plane (lab/kubernetes) on the control-plane
 * node, a kubelet (and, like a DaemonSet, an agent) on every node — and merges a kubectl context
 * for it. Each mesh component authenticates as its own ServiceAccount with the least RBAC it
 * needs (lib/api/rbac.ts); meshctl is the cluster's administrator, as a kind user is.
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
  await applyObjects(admin, [
    ...rbacObjects(MESH_ACCESS.agent),
    ...rbacObjects(MESH_ACCESS.clustermeshApiserver),
  ]);
  const caPem = readFileSync(kube.pki.ca.cert, "utf8");
  const serviceAccountKubeconfig = (access: ComponentAccess) => {
    const client = issueKubernetesClient(kube.pki, access.name, serviceAccountUser(access));
    const file = componentKubeconfig(journal, cluster.name, access.name);
    writeKubeconfig(file, {
      server: kube.apiServerUrl,
      caPem,
      certPem: readFileSync(client.cert, "utf8"),
      keyPem: readFileSync(client.key, "utf8"),
      context: `${access.name}@${cluster.name}`,
      cluster: cluster.name,
      user: access.name,
    });
    return file;
  };
  const agentKubeconfig = serviceAccountKubeconfig(MESH_ACCESS.agent);
  serviceAccountKubeconfig(MESH_ACCESS.clustermeshApiserver);
  // Cluster DNS as kind has it (kubeadm's CoreDNS add-on); its pods start once nodes are Ready.
  const clusterDns = clusterDnsIp(cluster.serviceSubnets[0]);
  const coredns = corednsManifest({
    serviceSubnet: cluster.serviceSubnets[0],
    // no upstream: lab pods resolve cluster names only, nothing is forwarded off the machine
    corefileText: corefile({ upstream: false }),
    binary: options.binaries.coredns,
    // one replica (kubeadm: two): a lab node is a process, not a failure domain
    replicas: 1,
  });
  await applyObjects(admin, loadAllYaml(coredns));

  const kubelets: StartedDaemon[] = [];
  for (const node of cluster.nodes) {
    installCni(journal, node);
    const { confDir, binDir, agentSocket } = cniPaths(journal, node.name);
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
          `--cni-conf-dir=${confDir}`,
          `--cni-bin-dir=${binDir}:/usr/lib/cni`,
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
          ...(labels.length ? [`--node-labels=${labels.join(",")}`] : []),
        ],
      }),
    );
    startComponent(journal, {
      role: "agent",
      cluster: cluster.name,
      node,
      logName: `${node.name}-agent.log`,
      argv: [
        AGENT_MAIN,
        `--kubeconfig=${agentKubeconfig}`,
        `--node-name=${node.name}`,
        `--cluster-name=${cluster.name}`,
        `--cluster-id=${cluster.id}`,
        `--bpffs-root=${join(journal.path("bpffs"), node.name)}`,
        `--cgroup-root=${join(options.cgroupRoot, node.name)}`,
        `--socket=${agentSocket}`,
        `--state-dir=${join(nodeDir(journal, node.name), "agent")}`,
        `--metrics-address=${node.ip}:9962`,
        `--encryption=${options.encryption ?? "none"}`,
        ...(options.encryption === "ipsec" ? [`--ipsec-backend=${options.ipsecBackend ?? "auto"}`] : []),
      ],
    });
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
