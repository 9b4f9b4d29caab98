/**
 * Test support for the agent's root tests: a small cluster without the full lab. A real Kubernetes
 * control plane (testing/kubernetes.ts) in its own netns on a bridge shared with the root netns
 * and the node netns (no default route anywhere); agents started in the node netns like the lab
 * does, as the agent's ServiceAccount with its least RBAC (lib/api/rbac.ts); pods = Pod objects
 * bound to a node (no kubelet runs) + netns + cgroup + CNI plugin invoked as a runtime would.
 * Every name carries a per-run prefix; stop() removes everything, also after failures.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  type V1EndpointSlice,
  type V1Pod,
  type V1Service,
} from "@kubernetes/client-node";
import { cgroup2Root, mountPrivateBpffs, type PrivateBpffs } from "../bpf/testing.js";
import type { AgentStatus } from "../lib/api/agent-status.js";
import type { CniResult } from "../lib/api/cni-protocol.js";
import { MESH_ACCESS } from "../lib/api/rbac.js";
import { cniPluginBinary } from "../lib/cni-plugin.js";
import { runSync } from "../lib/exec.js";
import {
  isRunning,
  type ProcessRef,
  startDaemon,
  stopProcess,
  WaitAborted,
  waitFor,
} from "../lib/process.js";
import { callAgent } from "./cni-agent-client.js";
import { TEST_POD_SUBNET, TestKubernetes } from "./kubernetes.js";

const AGENT_MAIN = fileURLToPath(new URL("../agent/main.js", import.meta.url));
export const REQUEST_LOOP = fileURLToPath(new URL("../agent/testing/request-loop.js", import.meta.url));
export const ECHO_SERVER = fileURLToPath(new URL("../agent/testing/echo-server.js", import.meta.url));
export const PROBE = fileURLToPath(new URL("../agent/testing/probe.js", import.meta.url));
export const SERVICE_RANGE = "10.96.0.0/16";

export interface TestNode {
  name: string;
  netns: string;
  ip: string;
  podCidr: string;
  socket: string;
  stateDir: string;
  bpffsRoot: string;
  cgroupRoot: string;
  logFile: string;
  agent?: ProcessRef;
}

export interface TestPod {
  name: string;
  namespace: string;
  uid: string;
  node: TestNode;
  netns: string;
  containerId: string;
  cgroup: string;
  ip?: string;
}

export interface CniOutcome {
  exitCode: number;
  output: { code?: number; msg?: string; ips?: { address: string }[]; [key: string]: unknown };
}

function sh(netns: string, command: string, timeoutMs = 15_000): string {
  return runSync(["nsenter", `--net=/run/netns/${netns}`, "sh", "-c", command], { timeoutMs });
}

export class AgentTestCluster {
  readonly id = randomBytes(2).toString("hex");
  readonly dir = mkdtempSync(join(tmpdir(), `cma${this.id}-`));
  readonly bridge = `cma${this.id}br`;
  readonly nodes: TestNode[] = [];
  readonly pods = new Map<string, TestPod>();
  readonly daemons: ProcessRef[] = [];
  subnetPrefix = "";
  bridgeIp = "";
  readonly kube = new TestKubernetes({ podSubnet: TEST_POD_SUBNET, serviceSubnet: SERVICE_RANGE });
  /** The admin's: for the test's own objects (Nodes, Pods, Services, EndpointSlices). */
  kubeConfig = new KubeConfig();
  /** The agent's: its ServiceAccount user, with lib/api/rbac.ts's agent rules only. */
  agentKubeconfigPath = "";
  core!: CoreV1Api;
  discovery!: DiscoveryV1Api;
  private bpffs?: PrivateBpffs;
  private cgroupDir = "";
  private podCounter = 0;

  async start(nodeCount: number): Promise<void> {
    this.pickSubnet();
    this.bpffs = mountPrivateBpffs(`cma${this.id}-bpffs-`);
    this.cgroupDir = join(cgroup2Root(), `cma${this.id}`);
    mkdirSync(this.cgroupDir);
    runSync(["ip", "link", "add", this.bridge, "type", "bridge"]);
    runSync(["ip", "addr", "add", `${this.bridgeIp}/24`, "dev", this.bridge]);
    runSync(["ip", "link", "set", this.bridge, "up"]);
    for (let i = 1; i <= nodeCount; i++) this.createNode(i);
    await this.startControlPlane();
    for (const node of this.nodes) await this.registerNode(node);
  }

  private pickSubnet(): void {
    for (let attempt = 0; attempt < 50; attempt++) {
      const third = 100 + (randomBytes(1)[0] % 150);
      const prefix = `172.30.${third}`;
      const used =
        runSync(["ip", "-4", "route", "show", "root", `${prefix}.0/24`]) +
        runSync(["ip", "-4", "-o", "addr", "show", "to", `${prefix}.0/24`]);
      if (used.trim() === "") {
        this.subnetPrefix = prefix;
        this.bridgeIp = `${prefix}.1`;
        return;
      }
    }
    throw new Error("no free 172.30.x.0/24 subnet for the test bridge");
  }

  private createNode(index: number): void {
    const name = `cma${this.id}-n${index}`;
    const netns = `cma${this.id}n${index}`;
    const node: TestNode = {
      name,
      netns,
      ip: `${this.subnetPrefix}.${10 + index}`,
      podCidr: `10.244.${index}.0/24`,
      socket: join(this.dir, `n${index}`, "agent.sock"),
      stateDir: join(this.dir, `n${index}`, "state"),
      bpffsRoot: join(this.bpffs?.path ?? "", `n${index}`),
      cgroupRoot: join(this.cgroupDir, `n${index}`),
      logFile: join(this.dir, `n${index}`, "agent.log"),
    };
    mkdirSync(join(this.dir, `n${index}`), { recursive: true });
    mkdirSync(node.bpffsRoot, { recursive: true });
    mkdirSync(node.cgroupRoot);
    runSync(["ip", "netns", "add", netns]);
    const hostVeth = `cma${this.id}v${index}`;
    runSync(["ip", "link", "add", hostVeth, "type", "veth", "peer", "name", "eth0", "netns", netns]);
    runSync(["ip", "link", "set", hostVeth, "master", this.bridge, "up"]);
    sh(
      netns,
      [
        "sysctl -qw net.ipv6.conf.all.disable_ipv6=1",
        "ip link set lo up",
        `ip addr add ${node.ip}/24 dev eth0`,
        "ip link set eth0 up",
      ].join(" && "),
    );
    this.nodes.push(node);
  }

  private async startControlPlane(): Promise<void> {
    await this.kube.start({ bridge: this.bridge, ip: `${this.subnetPrefix}.2`, prefixLength: 24 });
    this.kubeConfig = this.kube.kubeConfig();
    this.core = this.kubeConfig.makeApiClient(CoreV1Api);
    this.discovery = this.kubeConfig.makeApiClient(DiscoveryV1Api);
    this.agentKubeconfigPath = await this.kube.componentKubeconfig(MESH_ACCESS.agent);
    // The ServiceAccount admission plugin refuses pods until the controller created "default".
    await waitFor(
      "the default ServiceAccount of namespace default",
      async () => {
        try {
          await this.core.readNamespacedServiceAccount({ name: "default", namespace: "default" });
          return true;
        } catch (error) {
          if ((error as { code?: number }).code === 404) return false;
          throw error;
        }
      },
      { timeoutMs: 60_000, intervalMs: 200 },
    );
  }

  /**
   * The Node as a kubelet registers it: status comes with the create (Nodes accept it there), as
   * kube-controller-manager's node controllers update the Node right away and a later
   * read-modify-write of the status would race them.
   */
  private async registerNode(node: TestNode): Promise<void> {
    await this.core.createNode({
      body: {
        metadata: { name: node.name },
        spec: { podCIDR: node.podCidr, podCIDRs: [node.podCidr] },
        status: { addresses: [{ type: "InternalIP", address: node.ip }] },
      },
    });
  }

  /** agentMain: another build's dist/agent/main.js (benchmarks comparing before and after). */
  agentArgv(node: TestNode, clusterId = 7, agentMain = AGENT_MAIN): string[] {
    return [
      process.execPath,
      "--enable-source-maps",
      agentMain,
      "--kubeconfig",
      this.agentKubeconfigPath,
      "--node-name",
      node.name,
      "--cluster-name",
      "agenttest",
      "--cluster-id",
      String(clusterId),
      "--bpffs-root",
      node.bpffsRoot,
      "--cgroup-root",
      node.cgroupRoot,
      "--socket",
      node.socket,
      "--state-dir",
      node.stateDir,
      "--metrics-address",
      `${node.ip}:9962`,
      "--mtu",
      "1500",
    ];
  }

  async startAgent(node: TestNode, options: { agentMain?: string } = {}): Promise<void> {
    node.agent = startDaemon({
      argv: this.agentArgv(node, undefined, options.agentMain),
      netns: node.netns,
      logFile: node.logFile,
      env: { ...process.env, MESH_LOG_LEVEL: process.env.MESH_LOG_LEVEL ?? "info" },
    });
    this.daemons.push(node.agent);
    const agent = node.agent;
    await waitFor(
      `agent on ${node.name} to be ready`,
      async () => {
        if (!isRunning(agent))
          throw new WaitAborted(`agent on ${node.name} exited; see ${node.logFile}:\n${tail(node.logFile)}`);
        return (await this.cni(node, "STATUS")).exitCode === 0;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  }

  async stopAgent(node: TestNode): Promise<void> {
    if (node.agent) await stopProcess(node.agent, 5_000);
    node.agent = undefined;
  }

  async status(node: TestNode): Promise<AgentStatus> {
    return JSON.parse(await unixGet(node.socket, "/v1/status")) as AgentStatus;
  }

  async metrics(node: TestNode): Promise<string> {
    return runSync([
      "nsenter",
      `--net=/run/netns/${node.netns}`,
      "node",
      "-e",
      `fetch("http://${node.ip}:9962/metrics").then(r=>r.text()).then(t=>process.stdout.write(t))`,
    ]);
  }

  networkConfig(node: TestNode): string {
    return JSON.stringify({
      cniVersion: "1.1.0",
      name: "clustermesh",
      type: "clustermesh",
      agentSocket: node.socket,
    });
  }

  /** Runs the plugin in the node's netns the way a runtime does (environment + stdin). */
  cni(
    node: TestNode,
    command: string,
    pod?: Pick<TestPod, "containerId" | "netns" | "namespace" | "name" | "uid">,
    stdin = this.networkConfig(node),
  ): Promise<CniOutcome> {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, CNI_COMMAND: command, CNI_PATH: "/opt/cni/bin" };
    if (pod) {
      env.CNI_CONTAINERID = pod.containerId;
      env.CNI_NETNS = `/run/netns/${pod.netns}`;
      env.CNI_IFNAME = "eth0";
      env.CNI_ARGS = `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name};K8S_POD_UID=${pod.uid}`;
    }
    return new Promise((resolve) => {
      const child = execFile(
        "nsenter",
        [`--net=/run/netns/${node.netns}`, "--", cniPluginBinary()],
        { env, timeout: 60_000 },
        (error, stdout) => {
          const exitCode = error ? (typeof error.code === "number" ? error.code : 1) : 0;
          let output: CniOutcome["output"] = {};
          try {
            output = stdout.trim() ? JSON.parse(stdout) : {};
          } catch {
            output = { msg: `unparseable: ${stdout}` };
          }
          resolve({ exitCode, output });
        },
      );
      child.stdin?.end(stdin);
    });
  }

  /**
   * The same request the plugin would send, straight to the agent's socket: for churn tests, where
   * starting the plugin's node process 200 times would dominate (the plugin has its own tests).
   */
  async cniDirect(node: TestNode, command: "ADD" | "DEL", pod: TestPod): Promise<CniResult | null> {
    return callAgent(node.socket, {
      command,
      containerId: pod.containerId,
      netns: `/run/netns/${pod.netns}`,
      ifname: "eth0",
      args: { K8S_POD_NAMESPACE: pod.namespace, K8S_POD_NAME: pod.name, K8S_POD_UID: pod.uid },
      config: JSON.parse(this.networkConfig(node)),
    });
  }

  /** A Pod object bound to node, its netns and cgroup (no CNI yet). */
  async createPod(
    node: TestNode,
    options: {
      name?: string;
      namespace?: string;
      labels?: Record<string, string>;
      ports?: { name: string; containerPort: number; protocol?: string }[];
    } = {},
  ): Promise<TestPod> {
    const index = ++this.podCounter;
    const name = options.name ?? `pod${index}`;
    const namespace = options.namespace ?? "default";
    const created = await this.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name, labels: options.labels ?? {} },
        spec: {
          nodeName: node.name,
          containers: [{ name: "main", image: "clustermesh/echo", ports: options.ports }],
        },
      },
    });
    const pod: TestPod = {
      name,
      namespace,
      uid: created.metadata?.uid ?? "",
      node,
      netns: `cma${this.id}p${index}`,
      containerId: `c${this.id}${index.toString().padStart(4, "0")}${randomBytes(4).toString("hex")}`,
      cgroup: join(node.cgroupRoot, `pod${index}`),
    };
    runSync(["ip", "netns", "add", pod.netns]);
    mkdirSync(pod.cgroup);
    this.pods.set(pod.netns, pod);
    return pod;
  }

  /** createPod + CNI ADD; fails the test if ADD fails. */
  async startPod(
    node: TestNode,
    options: Parameters<AgentTestCluster["createPod"]>[1] = {},
  ): Promise<TestPod> {
    const pod = await this.createPod(node, options);
    const outcome = await this.cni(node, "ADD", pod);
    if (outcome.exitCode !== 0) throw new Error(`ADD ${pod.name}: ${JSON.stringify(outcome.output)}`);
    pod.ip = outcome.output.ips?.[0]?.address.split("/")[0];
    return pod;
  }

  /** CNI DEL, the Pod object and the sandbox. */
  async removePod(pod: TestPod): Promise<void> {
    const outcome = await this.cni(pod.node, "DEL", pod);
    if (outcome.exitCode !== 0) throw new Error(`DEL ${pod.name}: ${JSON.stringify(outcome.output)}`);
    await this.deletePodObject(pod);
    this.removeSandbox(pod);
  }

  async deletePodObject(pod: TestPod): Promise<void> {
    try {
      await this.core.deleteNamespacedPod({
        namespace: pod.namespace,
        name: pod.name,
        gracePeriodSeconds: 0,
      });
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
    }
  }

  removeSandbox(pod: TestPod): void {
    if (existsSync(`/run/netns/${pod.netns}`)) runSync(["ip", "netns", "del", pod.netns]);
    if (existsSync(pod.cgroup)) {
      // socat's forked children may outlive their parent: kill whatever is left in the pod
      if (readFileSync(join(pod.cgroup, "cgroup.procs"), "utf8").trim())
        writeFileSync(join(pod.cgroup, "cgroup.kill"), "1");
      for (let i = 0; i < 100 && readFileSync(join(pod.cgroup, "cgroup.procs"), "utf8").trim(); i++)
        runSync(["sleep", "0.02"]);
      rmdirSync(pod.cgroup);
    }
    this.pods.delete(pod.netns);
  }

  /** A command in the pod's netns; with cgroup, also in the pod's cgroup (socket LB applies). */
  inPod(pod: TestPod, command: string, options: { cgroup?: boolean; timeoutMs?: number } = {}): string {
    const argv = ["nsenter", `--net=/run/netns/${pod.netns}`, "sh", "-c", command];
    const full =
      options.cgroup === false
        ? argv
        : ["sh", "-c", `echo $$ > '${pod.cgroup}/cgroup.procs' && exec "$@"`, "sh", ...argv];
    return runSync(full, { timeoutMs: options.timeoutMs ?? 15_000 });
  }

  /** probe.js in the pod: COUNT requests, their answers ("error: …" for failures). */
  probe(
    pod: TestPod,
    protocol: "tcp" | "udp",
    host: string,
    port: number,
    count: number,
    options: { cgroup?: boolean } = {},
  ): string[] {
    return JSON.parse(
      this.inPod(pod, `${process.execPath} ${PROBE} ${protocol} ${host} ${port} ${count}`, {
        ...options,
        timeoutMs: 60_000,
      }),
    );
  }

  /** The test backend (echo-server.js) in the pod. */
  startEchoServer(pod: TestPod, name: string): ProcessRef {
    return this.startInPod(pod, [process.execPath, ECHO_SERVER, name], `${name}-echo`);
  }

  /** A long-running process in the pod (netns + cgroup), stopped by stop(). */
  startInPod(pod: TestPod, argv: string[], logName: string): ProcessRef {
    const ref = startDaemon({
      argv: [
        "sh",
        "-c",
        `echo $$ > '${pod.cgroup}/cgroup.procs' && exec "$@"`,
        "sh",
        "nsenter",
        `--net=/run/netns/${pod.netns}`,
        ...argv,
      ],
      logFile: join(this.dir, `${logName}.log`),
    });
    this.daemons.push(ref);
    return ref;
  }

  logOf(logName: string): string {
    return readFileSync(join(this.dir, `${logName}.log`), "utf8");
  }

  async createService(body: V1Service): Promise<V1Service> {
    return this.core.createNamespacedService({ namespace: body.metadata?.namespace ?? "default", body });
  }

  async applyEndpointSlice(body: V1EndpointSlice): Promise<void> {
    const namespace = body.metadata?.namespace ?? "default";
    const name = body.metadata?.name ?? "";
    try {
      const current = await this.discovery.readNamespacedEndpointSlice({ namespace, name });
      await this.discovery.replaceNamespacedEndpointSlice({
        namespace,
        name,
        body: { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata?.resourceVersion } },
      });
    } catch (error) {
      if ((error as { code?: number }).code !== 404) throw error;
      await this.discovery.createNamespacedEndpointSlice({ namespace, body });
    }
  }

  hostLinks(node: TestNode): string[] {
    return (JSON.parse(sh(node.netns, "ip -j link show type veth")) as { ifname: string }[])
      .map((l) => l.ifname)
      .filter((n) => n.startsWith("lxc"));
  }

  async stop(): Promise<void> {
    const problems: string[] = [];
    const attempt = async (what: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (error) {
        problems.push(`${what}: ${(error as Error).message}`);
      }
    };
    for (const ref of this.daemons) await attempt(`stop PID ${ref.pid}`, () => stopProcess(ref, 3_000));
    for (const pod of [...this.pods.values()])
      await attempt(`pod ${pod.netns}`, () => this.removeSandbox(pod));
    for (const node of this.nodes) {
      await attempt(
        `netns ${node.netns}`,
        () => existsSync(`/run/netns/${node.netns}`) && runSync(["ip", "netns", "del", node.netns]),
      );
    }
    await attempt("bridge", () => runSync(["ip", "link", "del", this.bridge]));
    await attempt("bpffs", () => this.bpffs?.cleanup());
    for (const node of this.nodes)
      await attempt(
        `cgroup ${node.cgroupRoot}`,
        () => existsSync(node.cgroupRoot) && rmdirSync(node.cgroupRoot),
      );
    await attempt("cgroup", () => this.cgroupDir && existsSync(this.cgroupDir) && rmdirSync(this.cgroupDir));
    await attempt("control plane", () => this.kube.stop());
    if (process.env.KEEP_AGENT_TEST_DIR) process.stderr.write(`kept ${this.dir}\n`);
    else rmSync(this.dir, { recursive: true, force: true });
    if (problems.length > 0) throw new Error(`cleanup problems:\n${problems.join("\n")}`);
  }
}

export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export function unixGet(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: "GET", timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

export type { V1Pod };
