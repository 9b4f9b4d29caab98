import { chmodSync, copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { IpsecBackendChoice } from "../lib/api/encryption.js";
import { cniPluginBinary } from "../lib/cni-plugin.js";
import { isRunning, type ProcessRef, startDaemon, WaitAborted, waitFor } from "../lib/process.js";
import {
  defaultKubeconfigPath,
  mergeKubeconfigContext,
  writeKubeconfig,
} from "./kube-apiserver/kubeconfig.js";
import { type ClusterKubePki, createClusterKubePki } from "./kube-apiserver/pki.js";
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

function componentKubeconfig(
  journal: LabJournal,
  cluster: PlannedCluster,
  pki: ClusterKubePki,
  name: string,
  paths: { cert: string; key: string },
): string {
  const file = componentKubeconfigPath(journal, cluster.name, name);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeKubeconfig(file, {
    server: apiServerUrl(cluster),
    caPem: readFileSync(pki.ca.cert, "utf8"),
    certPem: readFileSync(paths.cert, "utf8"),
    keyPem: readFileSync(paths.key, "utf8"),
    context: cluster.name,
    cluster: cluster.name,
    user: name,
  });
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
  /** PEM files of the lab CA's etcd admin client and the CA itself. */
  etcdClient: { ca: string; cert: string; key: string };
  cgroupRoot: string;
  /** Node-to-node encryption mode every agent runs with. */
  encryption?: "none" | "wireguard" | "ipsec";
  /** IPsec only: the agents' `--ipsec-backend` (default auto: the ESP probe decides). */
  ipsecBackend?: IpsecBackendChoice;
}

/**
 * Brings up one cluster's Kubernetes: API server and controllers on the control-plane node, a
 * kubelet (and, like a DaemonSet, an agent) on every node; merges a kubectl context for it.
 */
export async function startControlPlane(options: ControlPlaneOptions): Promise<{ context: string }> {
  const { journal, plan, cluster } = options;
  const controlPlane = controlPlaneOf(cluster);
  const pki = createClusterKubePki(journal.path("clusters", cluster.name, "kube-pki"), {
    clusterName: cluster.name,
    apiServerIps: [controlPlane.ip],
    serviceSubnet: cluster.serviceSubnets[0],
    nodes: cluster.nodes.map((n) => ({ name: n.name, ip: n.ip })),
  });

  const apiServer = startComponent(journal, {
    role: "kube-apiserver",
    cluster: cluster.name,
    node: controlPlane,
    logName: `${cluster.name}-kube-apiserver.log`,
    argv: [
      join(DIST, "lab", "kube-apiserver", "main.js"),
      `--bind-address=${controlPlane.ip}`,
      `--secure-port=${API_SERVER_PORT}`,
      `--tls-cert-file=${pki.apiServer.cert}`,
      `--tls-private-key-file=${pki.apiServer.key}`,
      `--client-ca-file=${pki.ca.cert}`,
      `--etcd-servers=${cluster.etcdEndpoint}`,
      `--etcd-cafile=${options.etcdClient.ca}`,
      `--etcd-certfile=${options.etcdClient.cert}`,
      `--etcd-keyfile=${options.etcdClient.key}`,
      `--service-cluster-ip-range=${cluster.serviceSubnets.join(",")}`,
      `--kubelet-client-certificate=${pki.apiServerKubeletClient.cert}`,
      `--kubelet-client-key=${pki.apiServerKubeletClient.key}`,
      `--kubelet-certificate-authority=${pki.ca.cert}`,
      `--cluster-name=${cluster.name}`,
    ],
  });
  const adminTls = {
    ca: readFileSync(pki.ca.cert, "utf8"),
    cert: readFileSync(pki.admin.cert, "utf8"),
    key: readFileSync(pki.admin.key, "utf8"),
  };
  await waitFor(
    `the API server of ${cluster.name} to be ready`,
    async () => {
      aborting(apiServer);
      return (await httpsGet(`${apiServerUrl(cluster)}/readyz`, adminTls)).status === 200;
    },
    { timeoutMs: 30_000, intervalMs: 100 },
  );

  const context = kubeContextName(plan, cluster.name);
  const kubeconfigPath = defaultKubeconfigPath();
  journal.record({ kind: "kubeconfig-context", path: kubeconfigPath, context });
  mergeKubeconfigContext(kubeconfigPath, {
    server: apiServerUrl(cluster),
    caPem: adminTls.ca,
    certPem: adminTls.cert,
    keyPem: adminTls.key,
    context,
    cluster: context,
    user: `${context}-admin`,
  });

  startComponent(journal, {
    role: "controllers",
    cluster: cluster.name,
    node: controlPlane,
    logName: `${cluster.name}-controllers.log`,
    argv: [
      join(DIST, "lab", "controllers", "main.js"),
      `--kubeconfig=${componentKubeconfig(journal, cluster, pki, "controller-manager", pki.controllerManager)}`,
      `--cluster-name=${cluster.name}`,
      `--pod-subnet=${cluster.podSubnets.join(",")}`,
    ],
  });

  const agentKubeconfig = componentKubeconfig(journal, cluster, pki, "agent", pki.agent);
  componentKubeconfig(journal, cluster, pki, "clustermesh-apiserver", pki.clustermeshApiserver);
  componentKubeconfig(journal, cluster, pki, "meshctl", pki.meshctl);
  for (const node of cluster.nodes) {
    installCni(journal, node);
    const { confDir, binDir, agentSocket } = cniPaths(journal, node.name);
    const kubeletPki = pki.kubelets[node.name];
    const labels = Object.entries(node.labels).map(([k, v]) => `${k}=${v}`);
    startComponent(journal, {
      role: "kubelet",
      cluster: cluster.name,
      node,
      logName: `${node.name}-kubelet.log`,
      argv: [
        join(DIST, "lab", "kubelet", "main.js"),
        `--kubeconfig=${componentKubeconfig(journal, cluster, pki, `kubelet-${node.name}`, kubeletPki)}`,
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
        `--client-ca-file=${pki.ca.cert}`,
        ...(node.role === "control-plane" ? ["--control-plane"] : []),
        ...(labels.length ? [`--node-labels=${labels.join(",")}`] : []),
      ],
    });
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
  await waitFor(
    `every node of ${cluster.name} to register`,
    async () => {
      aborting(apiServer);
      const { status, body } = await httpsGet(`${apiServerUrl(cluster)}/api/v1/nodes`, adminTls);
      if (status !== 200) return false;
      const names = new Set(
        (JSON.parse(body).items ?? []).map((n: { metadata: { name: string } }) => n.metadata.name),
      );
      return cluster.nodes.every((n) => names.has(n.name));
    },
    { timeoutMs: 30_000, intervalMs: 200 },
  );
  return { context };
}
