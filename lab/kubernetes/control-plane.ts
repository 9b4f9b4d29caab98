/**
 * One cluster's real Kubernetes control plane, started in its control-plane node's network
 * namespace: etcd 3.5, kube-apiserver, kube-controller-manager and kube-scheduler built from the
 * pinned releases (toolchain/), with kubeadm's PKI and flags (./pki.ts, ./flags.ts). Every process
 * is recorded in the journal before anything waits on it, so `lab down` (or a test) removes it.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { dirname } from "node:path";
import { run } from "../../lib/exec.js";
import {
  isRunning,
  type ProcessRef,
  startDaemon,
  stopProcess,
  WaitAborted,
  waitFor,
} from "../../lib/process.js";
import { mergeKubeconfigContext, writeKubeconfig } from "../kube-apiserver/kubeconfig.js";
import type { LabJournal } from "../state.js";
import { type ControlPlaneBinaries, controlPlaneBinaries } from "./binaries.js";
import {
  API_SERVER_PORT,
  apiServerArgv,
  type ControlPlaneLayout,
  controllerManagerArgv,
  DEFAULT_NODE_PORT_RANGE,
  etcdArgv,
  schedulerArgv,
} from "./flags.js";
import { createKubernetesPki, type KubernetesPki } from "./pki.js";

export interface KubernetesControlPlaneOptions {
  /** Where files go (`path`) and where started processes are recorded (`record`). */
  journal: Pick<LabJournal, "path" | "record">;
  clusterName: string;
  /** The control-plane node: everything runs in its netns and the API server advertises its IP. */
  node: { name: string; ip: string; netns: string };
  /** Every node of the cluster: each gets a kubelet certificate and kubeconfig. */
  nodes: { name: string; ip: string }[];
  podSubnets: string[];
  serviceSubnets: string[];
  nodePortRange?: string;
  /** etcd's data directory (tmpfs is best); default under the journal's directory. */
  etcdDataDir?: string;
  /** Merge an admin context of this name into `kubeconfigPath` (the user's kubeconfig). */
  adminContext?: { name: string; kubeconfigPath: string };
  /** Progress lines (the build's and ours). */
  progress?: (line: string) => void;
  /** Prebuilt binaries; default: scripts/go-build.sh builds them on first use. */
  binaries?: ControlPlaneBinaries;
}

export interface StartedComponent {
  // kube-etcd: the lab also runs the mesh's own etcd (role etcd) on the same node
  role: "kube-etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler";
  ref: ProcessRef;
  logFile: string;
  argv: string[];
}

export interface KubernetesControlPlane {
  apiServerUrl: string;
  pki: KubernetesPki;
  binaries: ControlPlaneBinaries;
  /** kubeconfig files: admin, controller-manager, scheduler, and `kubelet-<node>` per node. */
  kubeconfigs: Record<string, string>;
  /** In start order; stop in reverse. */
  components: StartedComponent[];
}

export function apiServerUrlOf(ip: string): string {
  return `https://${ip.includes(":") ? `[${ip}]` : ip}:${API_SERVER_PORT}`;
}

/** Starts the control plane and resolves once the API server is ready and both managers are healthy. */
export async function startKubernetesControlPlane(
  options: KubernetesControlPlaneOptions,
): Promise<KubernetesControlPlane> {
  const { journal, clusterName, node } = options;
  const say = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const binaries = options.binaries ?? (await controlPlaneBinaries(say));
  const base = journal.path("clusters", clusterName, "kubernetes");
  const pki = createKubernetesPki(`${base}/pki`, {
    clusterName,
    apiServerIps: [node.ip],
    serviceSubnet: options.serviceSubnets[0],
    nodes: options.nodes,
  });
  const apiServerUrl = apiServerUrlOf(node.ip);
  const caPem = readFileSync(pki.ca.cert, "utf8");
  const kubeconfigs: Record<string, string> = {};
  const kubeconfig = (name: string, user: string, paths: { cert: string; key: string }) => {
    const file = `${base}/kubeconfig/${name}.conf`;
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    writeKubeconfig(file, {
      server: apiServerUrl,
      caPem,
      certPem: readFileSync(paths.cert, "utf8"),
      keyPem: readFileSync(paths.key, "utf8"),
      context: `${user}@${clusterName}`,
      cluster: clusterName,
      user,
    });
    kubeconfigs[name] = file;
    return file;
  };
  kubeconfig("admin", "kubernetes-admin", pki.admin);
  for (const n of options.nodes)
    kubeconfig(`kubelet-${n.name}`, `system:node:${n.name}`, pki.kubelets[n.name]);
  const layout: ControlPlaneLayout = {
    clusterName,
    nodeName: node.name,
    nodeIp: node.ip,
    podSubnets: options.podSubnets,
    serviceSubnets: options.serviceSubnets,
    nodePortRange: options.nodePortRange ?? DEFAULT_NODE_PORT_RANGE,
    etcdDataDir: options.etcdDataDir ?? `${base}/etcd`,
    pki,
    kubeconfigs: {
      controllerManager: kubeconfig(
        "controller-manager",
        "system:kube-controller-manager",
        pki.controllerManager,
      ),
      scheduler: kubeconfig("scheduler", "system:kube-scheduler", pki.scheduler),
    },
    binaries,
  };
  mkdirSync(`${base}/logs`, { recursive: true });
  mkdirSync(layout.etcdDataDir, { recursive: true, mode: 0o700 });

  const components: StartedComponent[] = [];
  const start = (role: StartedComponent["role"], argv: string[]): StartedComponent => {
    const logFile = `${base}/logs/${role}.log`;
    const ref = startDaemon({ argv, netns: node.netns, logFile });
    journal.record({
      kind: "process",
      role,
      cluster: clusterName,
      node: node.name,
      pid: ref.pid,
      startTime: ref.startTime,
      logFile,
      argv,
      netns: node.netns,
    });
    const component = { role, ref, logFile, argv };
    components.push(component);
    return component;
  };
  const adminTls = {
    ca: caPem,
    cert: readFileSync(pki.admin.cert, "utf8"),
    key: readFileSync(pki.admin.key, "utf8"),
  };

  const began = Date.now();
  const etcd = start("kube-etcd", etcdArgv(layout, `${clusterName}-${randomBytes(8).toString("hex")}`));
  const apiServer = start("kube-apiserver", apiServerArgv(layout));
  // The API server retries etcd until it answers: waiting for /readyz covers etcd too.
  await waitFor(
    `the kube-apiserver of ${clusterName} to be ready (${apiServerUrl}/readyz)`,
    async () => {
      alive(etcd);
      alive(apiServer);
      return (await httpsGet(`${apiServerUrl}/readyz`, adminTls)).status === 200;
    },
    { timeoutMs: 180_000, intervalMs: 250 },
  );
  say(`${clusterName}: etcd and kube-apiserver ready in ${((Date.now() - began) / 1000).toFixed(1)} s`);

  const controllerManager = start("kube-controller-manager", controllerManagerArgv(layout));
  const scheduler = start("kube-scheduler", schedulerArgv(layout));
  // Both serve /healthz on 127.0.0.1 of the node's netns only (as kubeadm binds them).
  for (const [component, port] of [
    [controllerManager, 10257],
    [scheduler, 10259],
  ] as const) {
    await waitFor(
      `${component.role} of ${clusterName} to be healthy`,
      async () => {
        alive(component);
        const body = await run(["curl", "-sk", "--max-time", "2", `https://127.0.0.1:${port}/healthz`], {
          netns: node.netns,
        });
        return body.trim() === "ok";
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
  }
  say(`${clusterName}: kube-controller-manager and kube-scheduler healthy`);

  if (options.adminContext) {
    mergeKubeconfigContext(options.adminContext.kubeconfigPath, {
      server: apiServerUrl,
      caPem,
      certPem: adminTls.cert,
      keyPem: adminTls.key,
      context: options.adminContext.name,
      cluster: options.adminContext.name,
      user: `${options.adminContext.name}-admin`,
    });
  }
  return { apiServerUrl, pki, binaries, kubeconfigs, components };
}

/** Stops the components in reverse start order (by PID and start time). */
export async function stopKubernetesControlPlane(components: StartedComponent[]): Promise<void> {
  for (const component of [...components].reverse()) await stopProcess(component.ref, 10_000);
}

/** Gives up waiting when a component exited, with the end of its log. */
function alive(component: StartedComponent): void {
  if (isRunning(component.ref)) return;
  throw new WaitAborted(
    `${component.role} (PID ${component.ref.pid}) exited; last lines of ${component.logFile}:\n${tail(component.logFile, 15)}`,
  );
}

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return "(no log)";
  return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

function httpsGet(url: string, tls: { ca: string; cert: string; key: string }): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ...tls, timeout: 5_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
