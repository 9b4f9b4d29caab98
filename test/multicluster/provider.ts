/**
 * Where the multicluster scenarios run. The scenarios only talk to clusters through this seam:
 *   - "lab" (default): a fresh two-cluster `meshctl lab` (removed in down(), also after failures);
 *   - "kind" (MESH_E2E_PROVIDER=kind): two existing kind clusters, contexts from
 *     MESH_E2E_KIND_CONTEXTS (default "kind-c1,kind-c2"), with the mesh installed and enabled.
 * Scenarios that need the lab's process or network control (freezing a container's process,
 * pulling a node's bridge port, the agents' unix sockets, the remote etcd reached from the test)
 * check `lab` and skip on kind.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { agentStatus } from "../../lab/agent-socket.js";
import { containerProcess, MESH_POD_ROLES, meshPods } from "../../lab/mesh-pods.js";
import { LabJournal } from "../../lab/state.js";
import type { AgentStatus } from "../../lib/api/agent-status.js";
import { MeshObjects } from "../../lib/clustermesh/resources.js";
import {
  type CliResult,
  type LabFixture,
  labFixture,
  labUpArgs,
  MESHCTL,
  meshctl,
} from "../../testing/lab-fixture.js";

export type ClusterRef = "c1" | "c2";

export interface LabControl {
  name: string;
  env: NodeJS.ProcessEnv;
  /** Root-namespace side of a node's veth on the lab bridge. */
  hostInterface(node: string): string;
  nodeIp(node: string): string;
  /** Admin client files of a cluster's clustermesh etcd (the "malicious remote" writes with them). */
  clustermeshAdmin(cluster: ClusterRef): { ca: string; cert: string; key: string; endpoint: string };
  agentStatus(node: string): Promise<AgentStatus>;
  /** Asynchronous, so that samplers keep sampling meanwhile. */
  restart(component: string, options: { cluster?: ClusterRef; node?: string }): Promise<CliResult>;
  /**
   * Freezes a cluster's clustermesh-apiserver or clustermesh-etcd container (SIGSTOP of its process,
   * found in the kubelet's pod record); the returned function thaws it.
   */
  freeze(role: "clustermesh-apiserver" | "clustermesh-etcd", cluster: ClusterRef): Promise<() => void>;
}

export interface MeshProvider {
  kind: "lab" | "kind";
  context(cluster: ClusterRef): string;
  kubectl(cluster: ClusterRef, args: string[], input?: string): CliResult;
  meshctl(args: string[]): CliResult;
  /** Present only on the lab. */
  lab?: LabControl;
  /** Workdir for manifests. */
  dir: string;
  down(): void;
}

function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: string,
  timeoutMs = 120_000,
): CliResult {
  const result = spawnSync(command, args, { encoding: "utf8", env, input, timeout: timeoutMs });
  return { status: result.status, stdout: result.stdout ?? "", stderr: result.stderr ?? "" };
}

/** Brings up (lab) or attaches to (kind) two connected-ready clusters. `env` reaches the lab's agents. */
export async function meshProvider(env: NodeJS.ProcessEnv = {}): Promise<MeshProvider> {
  if (process.env.MESH_E2E_PROVIDER === "kind") return kindProvider();
  return labProvider(env);
}

/**
 * A fresh lab, or (for developing scenarios) an existing one: MESH_E2E_LAB=<name> with its
 * kubeconfig in MESH_E2E_KUBECONFIG, left running afterwards.
 */
async function labProvider(extraEnv: NodeJS.ProcessEnv): Promise<MeshProvider> {
  const reuse = process.env.MESH_E2E_LAB;
  const fixture: Pick<LabFixture, "name" | "dir" | "env" | "cleanup"> = reuse
    ? {
        name: reuse,
        dir: mkdtempSync(join(tmpdir(), `mesh-${reuse}-e2e-`)),
        env: { ...process.env, KUBECONFIG: process.env.MESH_E2E_KUBECONFIG },
        cleanup: () => {},
      }
    : await labFixture([{ workers: 1 }, { workers: 1 }]);
  const env = { ...fixture.env, ...extraEnv };
  const down = () => {
    if (reuse) return;
    meshctl(["lab", "down", "--name", fixture.name], env);
    fixture.cleanup();
  };
  if (!reuse) {
    // lab up is slow on a loaded machine: a longer deadline than meshctl()'s
    const up = run(process.execPath, [MESHCTL, ...labUpArgs(fixture as LabFixture)], env, undefined, 400_000);
    if (up.status !== 0) {
      down();
      throw new Error(`lab up failed: ${up.stderr}${up.stdout}`);
    }
  }
  const journal = LabJournal.open(fixture.name);
  if (!journal) {
    down();
    throw new Error(`lab ${fixture.name} has no journal`);
  }
  const plan = journal.snapshot.plan;
  const node = (name: string) => {
    const found = plan.clusters.flatMap((c) => c.nodes).find((n) => n.name === name);
    if (!found) throw new Error(`no lab node ${name}`);
    return found;
  };
  const controlPlaneIp = (cluster: ClusterRef) =>
    plan.clusters.find((c) => c.name === cluster)?.nodes.find((n) => n.role === "control-plane")?.ip ?? "";
  return {
    kind: "lab",
    dir: fixture.dir,
    context: (cluster) => `${fixture.name}-${cluster}`,
    kubectl: (cluster, args, input) =>
      run("kubectl", ["--context", `${fixture.name}-${cluster}`, ...args], env, input),
    meshctl: (args) => meshctl(args, env),
    lab: {
      name: fixture.name,
      env,
      hostInterface: (name) => node(name).hostInterface,
      nodeIp: (name) => node(name).ip,
      clustermeshAdmin: (cluster) => {
        // the admin certificate `meshctl install` issued, from its Secret (as the apiserver pod mounts it)
        const secret = run(
          "kubectl",
          [
            "--context",
            `${fixture.name}-${cluster}`,
            "-n",
            "kube-system",
            "get",
            "secret",
            MeshObjects.adminCert,
            "-o",
            "json",
          ],
          env,
        );
        if (secret.status !== 0)
          throw new Error(`reading ${MeshObjects.adminCert} of ${cluster}: ${secret.stderr}`);
        const data = JSON.parse(secret.stdout).data as Record<string, string>;
        const file = (key: string) => {
          const path = join(fixture.dir, `${cluster}-admin-${key}`);
          writeFileSync(path, Buffer.from(data[key], "base64"), { mode: 0o600 });
          return path;
        };
        return {
          ca: file("ca.crt"),
          cert: file("tls.crt"),
          key: file("tls.key"),
          endpoint: `https://${controlPlaneIp(cluster)}:32379`,
        };
      },
      agentStatus: (name) => agentStatus(fixture.name, name),
      freeze: async (role, cluster) => {
        const container = MESH_POD_ROLES[role].container ?? role;
        const [pod] = await meshPods(journal, cluster, MESH_POD_ROLES[role]);
        const ref = pod && containerProcess(journal, pod, container);
        if (!ref) throw new Error(`lab has no running ${role} container in ${cluster}`);
        process.kill(ref.pid, "SIGSTOP");
        return () => process.kill(ref.pid, "SIGCONT");
      },
      restart: (component, options) =>
        runAsync(
          [
            "lab",
            "restart",
            component,
            "--name",
            fixture.name,
            ...(options.cluster ? ["--cluster", options.cluster] : []),
            ...(options.node ? ["--node", options.node] : []),
          ],
          env,
        ),
    },
    down,
  };
}

function runAsync(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MESHCTL, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

function kindProvider(): MeshProvider {
  const [c1, c2] = (process.env.MESH_E2E_KIND_CONTEXTS ?? "kind-c1,kind-c2").split(",");
  const contexts: Record<ClusterRef, string> = { c1, c2 };
  const env = { ...process.env };
  return {
    kind: "kind",
    dir: process.env.TMPDIR ?? "/tmp",
    context: (cluster) => contexts[cluster],
    kubectl: (cluster, args, input) => run("kubectl", ["--context", contexts[cluster], ...args], env, input),
    meshctl: (args) => meshctl(args, env),
    down: () => {},
  };
}
