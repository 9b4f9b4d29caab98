/**
 * Test support: a real Kubernetes control plane (lab/kubernetes: etcd 3.5, kube-apiserver,
 * kube-controller-manager and kube-scheduler of the pinned release) in a network namespace
 * of its own, so parallel tests never share a port. The namespace is joined to the root namespace
 * either by a veth on a free /30 (`start()`), or to a test's bridge (`start({ bridge })`). Mesh
 * components get client certificates whose CN is their ServiceAccount user, and the RBAC objects
 * of lib/api/rbac.ts, never admin rights. stop() removes everything, also after a failed start.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiextensionsV1Api, KubeConfig, type V1CustomResourceDefinition } from "@kubernetes/client-node";
import {
  type KubernetesControlPlane,
  startKubernetesControlPlane,
  stopKubernetesControlPlane,
} from "../lab/kubernetes/control-plane.js";
import { writeKubeconfig } from "../lab/kubernetes/kubeconfig.js";
import { issueKubernetesClient } from "../lab/kubernetes/pki.js";
import type { LabResource } from "../lab/state.js";
import { type ComponentAccess, rbacObjects, serviceAccountUser } from "../lib/api/rbac.js";
import { runSync } from "../lib/exec.js";
import { applyObjects } from "../lib/k8s/apply.js";
import { isRunning, stopProcess, waitFor } from "../lib/process.js";

export const TEST_POD_SUBNET = "10.244.0.0/16";
export const TEST_SERVICE_SUBNET = "10.96.0.0/16";

/**
 * Always with kube-controller-manager: the tests need its ServiceAccount controller (the admission
 * plugin refuses pods without "default") and its EndpointSlice controller (real slices beside the
 * tests' own), and its node IPAM checks every Node's podCIDR against `podSubnet`.
 */
export interface TestKubernetesOptions {
  podSubnet?: string;
  serviceSubnet?: string;
}

/** Join a test's existing bridge at `ip`/`prefixLength` instead of a veth of our own. */
export interface BridgeLink {
  bridge: string;
  ip: string;
  prefixLength: number;
}

export class TestKubernetes {
  readonly id = randomBytes(3).toString("hex");
  readonly dir = mkdtempSync(join(tmpdir(), `ctk${this.id}-`));
  readonly netns = `ctk${this.id}`;
  /** The veth's end in the root namespace (or, with a bridge, the end enslaved to it). */
  readonly hostVeth = `ctk${this.id}h`;
  readonly etcdDataDir = join("/dev/shm", `ctk${this.id}-etcd`);
  /** Every process the control plane started, recorded before anything waited on it. */
  readonly records: LabResource[] = [];
  /** The API server's address (in the namespace). */
  ip = "";
  /** The root namespace's end of our own /30 (none with a bridge). */
  hostIp = "";
  cp?: KubernetesControlPlane;

  constructor(readonly options: TestKubernetesOptions = {}) {}

  get clusterName(): string {
    return "test";
  }

  get serviceSubnet(): string {
    return this.options.serviceSubnet ?? TEST_SERVICE_SUBNET;
  }

  /** The admin kubeconfig (system:masters): for the test's own objects only. */
  get kubeconfigPath(): string {
    if (!this.cp) throw new Error("the test control plane is not started");
    return this.cp.kubeconfigs.admin;
  }

  async start(link?: BridgeLink): Promise<void> {
    try {
      runSync(["ip", "netns", "add", this.netns]);
      runSync(["ip", "link", "set", "lo", "up"], { netns: this.netns });
      runSync([
        "ip",
        "link",
        "add",
        this.hostVeth,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        this.netns,
      ]);
      let prefixLength = 30;
      if (link) {
        this.ip = link.ip;
        prefixLength = link.prefixLength;
        runSync(["ip", "link", "set", this.hostVeth, "master", link.bridge, "up"]);
      } else {
        const network = freeSlash30();
        this.hostIp = offset(network, 1);
        this.ip = offset(network, 2);
        runSync(["ip", "addr", "add", `${this.hostIp}/30`, "dev", this.hostVeth]);
        runSync(["ip", "link", "set", this.hostVeth, "up"]);
      }
      runSync(["ip", "addr", "add", `${this.ip}/${prefixLength}`, "dev", "eth0"], { netns: this.netns });
      runSync(["ip", "link", "set", "eth0", "up"], { netns: this.netns });
      if (!link) runSync(["ip", "route", "add", "default", "via", this.hostIp], { netns: this.netns });
      this.cp = await startKubernetesControlPlane({
        journal: {
          path: (...parts: string[]) => join(this.dir, ...parts),
          record: (r) => this.records.push(r),
        },
        clusterName: this.clusterName,
        node: { name: `${this.clusterName}-control-plane`, ip: this.ip, netns: this.netns },
        nodes: [],
        podSubnets: [this.options.podSubnet ?? TEST_POD_SUBNET],
        serviceSubnets: [this.serviceSubnet],
        etcdDataDir: this.etcdDataDir,
        progress: () => {},
      });
    } catch (error) {
      await this.stop().catch((cleanup: unknown) => {
        throw new AggregateError(
          [error, cleanup],
          "starting the test control plane failed, and so did cleanup",
        );
      });
      throw error;
    }
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  /**
   * A kubeconfig for a mesh component: applies its ServiceAccount and least RBAC (lib/api/rbac.ts)
   * with the admin kubeconfig, and issues a client certificate whose CN is the ServiceAccount's
   * user, which RBAC matches exactly as it matches a token of that ServiceAccount.
   */
  async componentKubeconfig(access: ComponentAccess): Promise<string> {
    if (!this.cp) throw new Error("the test control plane is not started");
    await applyObjects(this.kubeConfig(), rbacObjects(access));
    const user = serviceAccountUser(access);
    const cert = issueKubernetesClient(this.cp.pki, access.name, user);
    const file = join(this.dir, "kubeconfig", `${access.name}.conf`);
    mkdirSync(join(this.dir, "kubeconfig"), { recursive: true, mode: 0o700 });
    writeKubeconfig(file, {
      server: this.cp.apiServerUrl,
      caPem: readFileSync(this.cp.pki.ca.cert, "utf8"),
      certPem: readFileSync(cert.cert, "utf8"),
      keyPem: readFileSync(cert.key, "utf8"),
      context: `${access.name}@${this.clusterName}`,
      cluster: this.clusterName,
      user,
    });
    return file;
  }

  /**
   * Creates CRDs and waits until each is Established: the real API server serves a new resource
   * only after its CRD controller has accepted the names (until then its objects are a 404).
   */
  async createCrds(crds: V1CustomResourceDefinition[]): Promise<void> {
    const api = this.kubeConfig().makeApiClient(ApiextensionsV1Api);
    for (const crd of crds) await api.createCustomResourceDefinition({ body: crd });
    for (const crd of crds) {
      const name = crd.metadata?.name ?? "";
      await waitFor(
        `CRD ${name} to be established`,
        async () =>
          (await api.readCustomResourceDefinition({ name })).status?.conditions?.some(
            (c) => c.type === "Established" && c.status === "True",
          ) ?? false,
        { timeoutMs: 30_000, intervalMs: 100 },
      );
    }
  }

  async stop(): Promise<void> {
    const problems: unknown[] = [];
    const attempt = async (fn: () => unknown) => {
      try {
        await fn();
      } catch (error) {
        problems.push(error);
      }
    };
    // By the records, not cp.components: a start that failed half way has no cp yet.
    if (this.cp) await attempt(() => stopKubernetesControlPlane(this.cp?.components ?? []));
    for (const record of [...this.records].reverse())
      if (record.kind === "process") await attempt(() => isRunning(record) && stopProcess(record, 10_000));
    // Deleting the namespace takes the veth pair with it.
    await attempt(
      () => existsSync(`/run/netns/${this.netns}`) && runSync(["ip", "netns", "del", this.netns]),
    );
    await attempt(() => rmSync(this.etcdDataDir, { recursive: true, force: true }));
    if (process.env.KEEP_KUBE_TEST_DIR) process.stderr.write(`kept ${this.dir}\n`);
    else await attempt(() => rmSync(this.dir, { recursive: true, force: true }));
    if (problems.length > 0) throw new AggregateError(problems, "cleaning up the test control plane failed");
  }
}

/** The address `n` after a /30's network address (whose last byte is a multiple of 4). */
function offset(network: string, n: number): string {
  const parts = network.split(".").map(Number);
  return `${parts[0]}.${parts[1]}.${parts[2]}.${parts[3] + n}`;
}

/**
 * The network address of a free 10.x.y.z/30 (x in 200..239, clear of the lab's pod and service
 * ranges): no route or address of the root namespace covers or lies inside it.
 */
function freeSlash30(): string {
  for (let attempt = 0; attempt < 50; attempt++) {
    const [a, b, c] = randomBytes(3);
    const network = `10.${200 + (a % 40)}.${b}.${c & 0xfc}`;
    const inside =
      runSync(["ip", "-4", "route", "show", "root", `${network}/30`]) +
      runSync(["ip", "-4", "-o", "addr", "show", "to", `${network}/30`]);
    const covering = runSync(["ip", "-4", "route", "show", "match", `${network}/30`])
      .split("\n")
      .filter((line) => line.trim() !== "" && !line.startsWith("default"));
    if (inside.trim() === "" && covering.length === 0) return network;
  }
  throw new Error("no free 10.x.y.z/30 for the test control plane's link");
}
