import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCa } from "../certs/authority.js";
import { saveBundle } from "../certs/store.js";
import {
  type EncryptionMode,
  IPSEC_KEYS_SECRET,
  type IpsecBackendChoice,
  newIpsecKeysLine,
} from "../lib/api/encryption.js";
import { cgroup2Root } from "../lib/cgroup.js";
import { connectCommand } from "../lib/clustermesh/hints.js";
import { DEFAULT_APISERVER_NODE_PORT } from "../lib/clustermesh/resources.js";
import { install } from "../lib/install/install.js";
import { checkInstallSettings, defaultImage } from "../lib/install/settings.js";
import { applySecret, coreApi, encodeSecretData, kubeConfigFor } from "../lib/k8s/client.js";
import { UsageError } from "../lib/usage-error.js";
import { connectLabMesh } from "./connect-mesh.js";
import {
  API_SERVER_PORT,
  componentKubeconfigPath,
  controlPlaneOf,
  kubeContextName,
  startControlPlane,
} from "./control-plane.js";
import { labDown } from "./down.js";
import { generatedLab } from "./generated-clusters.js";
import { meshImageLayers, writeImageStore } from "./image.js";
import { inotifyInstancesInUse, inotifyLimit, inotifyProblem } from "./inotify-budget.js";
import { createCgroup, mountBpffs } from "./kernel-objects.js";
import { type ControlPlaneBinaries, controlPlaneBinaries, corednsBinary } from "./kubernetes/binaries.js";
import { loadLabInputs, loadMeshFile } from "./load-config.js";
import { mapConcurrent } from "./map-concurrent.js";
import {
  addBlackhole,
  attachNode,
  createBridge,
  createNetns,
  hostRoutes,
  linkExists,
  listNetns,
} from "./network.js";
import { checkHostRoutes, hostRouteOverlapping, type LabPlan, planLab } from "./plan.js";
import { preflightProblems } from "./preflight.js";
import { LabJournal, labDir } from "./state.js";

export interface UpOptions {
  name: string;
  configFiles: string[];
  /** Instead of configFiles: this many generated one-node clusters (generated-clusters.ts). */
  clusters?: number;
  meshFile?: string;
  /** KVStoreMesh mode of the install (on/off); undefined: the install's default. */
  kvstoremesh?: boolean;
  /** After the install: connect every cluster with every other and wait until every node is programmed. */
  connect?: boolean;
  /** Node-to-node encryption in every cluster (default none); IPsec gets one random key shared by all clusters. */
  encryption?: EncryptionMode;
  /** With IPsec: the agents' backend (default auto: kernel XFRM where the kernel has ESP, else strongSwan). */
  ipsecBackend?: IpsecBackendChoice;
  /** Called with a line per finished step (kind-style progress). */
  progress?: (line: string) => void;
  /** Called once everything that can be checked before creating anything has been checked. */
  validated?: (plan: LabPlan) => void;
  /** Prebuilt Kubernetes and CoreDNS binaries; default: built (once) by scripts/go-build.sh. */
  binaries?: { controlPlane: ControlPlaneBinaries; coredns: string };
  /** Stop after the clusters are up, with no mesh installed (nodes NotReady, like a fresh kind cluster). */
  noMesh?: boolean;
}

export class LabExistsError extends UsageError {}
export class PreflightError extends UsageError {}

export function labPaths(plan: LabPlan) {
  const dir = labDir(plan.name);
  return {
    dir,
    pki: join(dir, "pki"),
    logs: join(dir, "logs"),
    bpffs: join(dir, "bpffs"),
    imageStore: join(dir, "images.json"),
    nodeHosts: join(dir, "hosts"),
    cgroup: join(cgroup2Root() ?? "/sys/fs/cgroup/unified", `clustermesh-${plan.name}`),
    shm: join("/dev/shm", `clustermesh-${plan.name}`),
  };
}

/** Everything that can be checked before creating anything: configs, host, names, routes. */
export async function prepareLab(options: UpOptions): Promise<{ plan: LabPlan; meshFile?: string }> {
  const problems = preflightProblems();
  if (problems.length > 0) throw new PreflightError(problems.join("\n"));

  const routes = await hostRoutes();
  const { clusters, mesh } =
    options.clusters === undefined
      ? loadLabInputs(options.configFiles, options.meshFile)
      : generatedLab(
          options.clusters,
          loadMeshFile(options.meshFile),
          (prefix) => !hostRouteOverlapping(routes, prefix),
        );
  const plan = planLab(options.name, clusters, mesh);

  const existing = LabJournal.open(plan.name);
  if (existing) {
    const { createdAt, complete, plan: old } = existing.snapshot;
    throw new LabExistsError(
      `lab "${plan.name}" already exists (${old.clusters.map((c) => c.name).join(", ")}, created ${createdAt}` +
        `${complete ? "" : ", its lab up did not finish"}); run: meshctl lab down --name ${plan.name}`,
    );
  }
  const namespaces = new Set(await listNetns());
  for (const node of plan.clusters.flatMap((cluster) => cluster.nodes)) {
    if (namespaces.has(node.netns)) {
      throw new LabExistsError(
        `network namespace ${node.netns} already exists; remove it or use another --name`,
      );
    }
  }
  if (await linkExists(plan.bridge.name)) {
    throw new LabExistsError(`link ${plan.bridge.name} already exists; remove it or use another --name`);
  }
  checkHostRoutes(plan, routes, mesh.file);
  const inotify = inotifyProblem(plan.clusters.length, inotifyInstancesInUse(), inotifyLimit());
  if (inotify) throw new PreflightError(inotify);
  return { plan, meshFile: mesh.file };
}

export async function labUp(options: UpOptions): Promise<LabPlan> {
  const { plan } = await prepareLab(options);
  options.validated?.(plan);
  const say = options.progress ?? (() => {});
  // Built (once, minutes when cold) before anything is created: a failed build leaves nothing.
  const binaries = options.binaries ?? {
    controlPlane: await controlPlaneBinaries(say),
    coredns: await corednsBinary(say),
  };
  const meshImage = await meshImageLayers(say);
  const journal = LabJournal.create(plan);
  try {
    const paths = labPaths(plan);
    journal.record({ kind: "dir", path: paths.dir });
    mkdirSync(paths.logs, { recursive: true });
    writeImageStore(paths.imageStore, meshImage);
    writeFileSync(
      paths.nodeHosts,
      plan.clusters
        .flatMap((cluster) => cluster.nodes)
        .map((node) => `${node.ip}\t${node.name}\n`)
        .join(""),
    );

    journal.record({ kind: "link", name: plan.bridge.name });
    await createBridge(plan.bridge.name, plan.bridge.address);
    for (const route of plan.blackholes) {
      journal.record({ kind: "blackhole-route", prefix: route.prefix });
      await addBlackhole(route.prefix);
    }
    say(
      `Lab network ${plan.bridge.name} ${plan.bridge.address}; ${plan.blackholes.length} pod/service prefixes blackholed`,
    );

    journal.record({ kind: "bpffs", path: paths.bpffs });
    await mountBpffs(paths.bpffs);
    journal.record({ kind: "cgroup", path: paths.cgroup });
    createCgroup(paths.cgroup);

    for (const cluster of plan.clusters) {
      for (const node of cluster.nodes) {
        journal.record({ kind: "netns", name: node.netns });
        await createNetns(node.netns);
        await attachNode({
          netns: node.netns,
          hostInterface: node.hostInterface,
          bridge: plan.bridge.name,
          address: `${node.ip}/${plan.bridge.address.split("/")[1]}`,
        });
        createCgroup(join(paths.cgroup, node.name));
      }
      say(
        `Cluster ${cluster.name} (id ${cluster.id}): nodes ${cluster.nodes.map((n) => `${n.name} ${n.ip}`).join(", ")}`,
      );
    }

    const ca = createCa({ commonName: `clustermesh lab ${plan.name} CA` });
    saveBundle(paths.pki, "ca", ca);
    journal.record({ kind: "dir", path: paths.shm });
    for (const node of plan.clusters.flatMap((c) => c.nodes))
      mkdirSync(join(paths.bpffs, node.name), { recursive: true });
    const contexts = await mapConcurrent(plan.clusters, CLUSTERS_AT_ONCE, (cluster) =>
      startControlPlane({
        journal,
        plan,
        cluster,
        kubeEtcdDataDir: join(paths.shm, cluster.name, "kube-etcd"),
        cgroupRoot: paths.cgroup,
        bpffs: paths.bpffs,
        imageStore: paths.imageStore,
        nodeHostsFile: paths.nodeHosts,
        progress: say,
        binaries,
      }),
    );
    say(`Kubernetes API servers ready; kubectl contexts: ${contexts.map((c) => c.context).join(", ")}`);

    if (!options.noMesh) await installMesh(journal, plan, ca, options, say);
    if (!options.noMesh && options.connect && plan.clusters.length > 1) {
      const { connectMs, programmedMs } = await connectLabMesh(journal, plan, {
        timeoutMs: MESH_PROGRAMMED_TIMEOUT_MS,
        progress: say,
      });
      say(
        `Connected ${plan.clusters.length} clusters as a full mesh in ${(connectMs / 1000).toFixed(1)} s; every node programmed with every other cluster ${(programmedMs / 1000).toFixed(1)} s after connect`,
      );
    }
    journal.markComplete();
  } catch (error) {
    // Nothing half-created stays behind: the error (with the failing component's log) is what the
    // user needs, and the record of everything created lets down remove it all.
    say(`lab up failed; removing what it created`);
    await labDown({ name: plan.name }).catch((cleanup: unknown) =>
      say(`removing failed too (${String(cleanup)}); run: meshctl lab down --name ${plan.name}`),
    );
    throw error;
  }
  return plan;
}

/**
 * `meshctl install` on every cluster, as a kind user runs it, with the lab's CA shared by all of
 * them (as `--ca-cert/--ca-key`): the agents and clustermesh-apiservers are DaemonSet and Deployment
 * pods on the lab's kubelets, from the mesh image of this checkout.
 */
async function installMesh(
  journal: LabJournal,
  plan: LabPlan,
  ca: { certPem: string; keyPem: string },
  options: UpOptions,
  say: (line: string) => void,
): Promise<void> {
  const encryption = options.encryption ?? "none";
  // All clusters of a mesh share the IPsec key (as Cilium requires): one random AEAD key, Cilium's
  // line format, per-node-pair derivation on ("+"). install keeps an existing key Secret.
  const ipsecKeys = encryption === "ipsec" ? newIpsecKeysLine() : undefined;
  await mapConcurrent(plan.clusters, CLUSTERS_AT_ONCE, async (cluster) => {
    const kc = kubeConfigFor(undefined, componentKubeconfigPath(journal, cluster.name, "meshctl"));
    if (ipsecKeys) {
      await applySecret(coreApi(kc), {
        metadata: { name: IPSEC_KEYS_SECRET.name, namespace: IPSEC_KEYS_SECRET.namespace },
        data: encodeSecretData({ [IPSEC_KEYS_SECRET.key]: ipsecKeys }),
      });
    }
    const settings = checkInstallSettings({
      clusterName: cluster.name,
      clusterId: cluster.id,
      encryption,
      ipsecBackend: options.ipsecBackend,
      // the lab's knob for tests of the stale-backend TTL (the agent's own default reads it too)
      clustermeshBackendTtl: process.env.MESH_CLUSTERMESH_BACKEND_TTL,
      // `lab up --kvstoremesh on|off`, else KVStoreMesh unless MESH_KVSTOREMESH=false (the
      // multicluster suite runs in both modes)
      kvstoremesh: options.kvstoremesh ?? process.env.MESH_KVSTOREMESH !== "false",
      k8sServiceHost: controlPlaneOf(cluster).ip,
      k8sServicePort: API_SERVER_PORT,
      image: defaultImage(),
      apiserverServiceType: "NodePort",
      nodePort: DEFAULT_APISERVER_NODE_PORT,
    });
    await install(kc, settings, {
      context: kubeContextName(plan, cluster.name),
      force: false,
      waitMs: MESH_READY_TIMEOUT_MS,
      ca,
      progress: (line) => say(`${cluster.name}: ${line}`),
    });
  });
  const connect = labConnectCommand(plan);
  say(
    `Mesh installed in every cluster (meshctl install, shared lab CA, encryption ${encryption})${connect ? `; connect them with: ${connect}` : ""}`,
  );
}

/**
 * Clusters started (and installed) at once: all of them at once on two cores made ten control
 * planes each ten times slower and ran them into their start-up deadlines; a 2-cluster lab is unchanged.
 */
const CLUSTERS_AT_ONCE = 3;

/** Ten clusters: 90 node × remote connections to sync and program while the machine is still busy. */
const MESH_PROGRAMMED_TIMEOUT_MS = 300_000;

/** Cold: the agents load the datapath and the clustermesh-apiserver's etcd starts, on 2 cores for every cluster at once. */
const MESH_READY_TIMEOUT_MS = 300_000;

/** The command that connects every cluster of the lab with each other, as a user copies it; none for one cluster. */
export function labConnectCommand(plan: LabPlan): string | undefined {
  const [first, ...others] = plan.clusters.map((cluster) => kubeContextName(plan, cluster.name));
  return others.length === 0 ? undefined : connectCommand(first, undefined, others);
}
