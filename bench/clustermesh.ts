/**
 * ClusterMesh control-plane benchmark (root), issue 6, side by side in one run on a fresh
 * two-cluster lab:
 *   1. propagation latency: an EndpointSlice change in cluster c2 → the backend in the BPF service
 *      map of a c1 agent (read through the agent's status API, which reads the pinned maps), over
 *      N changes (p50/p99/max); the path is c2 kube-apiserver → c2 clustermesh-apiserver → c2 etcd
 *      → c1 agent watch → merge → BPF;
 *   2. sync of a large remote cluster into one agent: 10k global services × 10 backends, 50k
 *      endpoints (ip/v1), 50 nodes, 500 identities written straight into a fake remote's etcd with
 *      lib/kvstore's encoders; then the remote is added to c1's remotes Secret: time until the
 *      agent reports it synced, until its 50k ipcache entries are in the BPF map; the agent's idle
 *      RSS (connected to c2 only, 10 s after it is ready), its RSS with the large remote (when
 *      programmed, and 10 s later without status reads — each status read copies the BPF maps),
 *      and the settled difference per remote endpoint (issue 18: ≤ 1.5 KiB; idle ≤ 100 MB);
 *   3. with `--before <other checkout>` (built: npm run bootstrap there), part 2 runs first with that
 *      checkout's agent (its image layers loaded into the lab as `clustermesh/clustermesh:before`,
 *      the agent DaemonSet switched to it), then with this build's, in the same lab and run: the
 *      figures side by side. The remote is removed (drained) between the two.
 * Everything (lab, the fake remote's etcd) is removed at the end, also on failure and SIGINT.
 *
 *   npx tsc -p . && node dist/bench/clustermesh.js [--changes 200] [--services 10000]
 *     [--backends 10] [--endpoints 50000] [--before /path/to/other/checkout [--this-build-first]]
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  AppsV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  type V1EndpointSlice,
} from "@kubernetes/client-node";
import { agentSocketPath, agentStatus } from "../lab/agent-socket.js";
import { loadImages } from "../lab/image.js";
import { containerProcess, MESH_POD_ROLES, meshPods } from "../lab/mesh-pods.js";
import { LabJournal } from "../lab/state.js";
import { getAgentStatus } from "../lib/api/agent-status.js";
import { MESH_NAMESPACE } from "../lib/api/rbac.js";
import { MeshObjects } from "../lib/clustermesh/resources.js";
import { InstallNames } from "../lib/install/names.js";
import { waitFor } from "../lib/process.js";
import { labFixture, labUpArgs, meshctl } from "../testing/lab-fixture.js";
import { cleanup, cleanupOnSignals, cleanups } from "./cleanups.js";
import { fakeRemoteSecretValue, ipv4, startFakeRemote } from "./fake-remote.js";

function option(name: string, fallback: string): number {
  const at = process.argv.indexOf(`--${name}`);
  return Number(at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1] : fallback);
}

const CHANGES = option("changes", "200");
const SERVICES = option("services", "10000");
const BACKENDS = option("backends", "10");
const ENDPOINTS = option("endpoints", "50000");
const BEFORE = (() => {
  const at = process.argv.indexOf("--before");
  if (at < 0) return undefined;
  const dir = process.argv[at + 1];
  if (!dir || !existsSync(join(dir, "dist", "agent", "main.js")))
    throw new Error(`--before: no built checkout at "${dir ?? ""}" (dist/agent/main.js missing)`);
  return dir;
})();
const BEFORE_IMAGE = "clustermesh/clustermesh:before";
/** Idle RSS is read this long after the agent reports ready (start-up garbage collected by then). */
const IDLE_SETTLE_MS = 10_000;
const FAKE_NODES = 50;
const FAKE_IDENTITIES = 500;
const FAKE_CLUSTER = { name: "bigremote", id: 99 };
const NS = "bench";

cleanupOnSignals();
const say = (line: string) => process.stderr.write(`${line}\n`);
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const rssMb = (pid: number) => {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return match ? Number(match[1]) / 1024 : Number.NaN;
};

async function main(): Promise<void> {
  const fixture = await labFixture([{ workers: 1 }, { workers: 1 }]);
  cleanups.push(() => {
    meshctl(["lab", "down", "--name", fixture.name], fixture.env);
    fixture.cleanup();
  });
  say(`bringing up lab ${fixture.name} (two clusters) …`);
  const up = meshctl(labUpArgs(fixture), fixture.env);
  if (up.status !== 0) throw new Error(`lab up failed: ${up.stderr}${up.stdout}`);
  const journal = LabJournal.open(fixture.name);
  if (!journal) throw new Error("no lab journal");
  const kc = (cluster: string) => {
    const config = new KubeConfig();
    config.loadFromFile(fixture.kubeconfig);
    config.setCurrentContext(`${fixture.name}-${cluster}`);
    return config;
  };
  const connect = meshctl(
    [
      "clustermesh",
      "connect",
      "--context",
      `${fixture.name}-c1`,
      "--destination-context",
      `${fixture.name}-c2`,
    ],
    fixture.env,
  );
  if (connect.status !== 0) throw new Error(`connect failed: ${connect.stderr}`);
  const observer = "c1-worker";
  await waitFor(
    "c1-worker connected to c2",
    async () =>
      (await agentStatus(fixture.name, observer)).clustermesh.remoteClusters.find((r) => r.name === "c2")
        ?.ready,
    { timeoutMs: 60_000, intervalMs: 200 },
  );

  // ---- 1. propagation latency ----
  const core1 = kc("c1").makeApiClient(CoreV1Api);
  const core2 = kc("c2").makeApiClient(CoreV1Api);
  const discovery2 = kc("c2").makeApiClient(DiscoveryV1Api);
  const service = {
    metadata: { name: "lat", namespace: NS, annotations: { "service.cilium.io/global": "true" } },
    spec: { ports: [{ name: "http", port: 80, targetPort: 8080 as never, protocol: "TCP" }] },
  };
  for (const core of [core1, core2]) {
    await core.createNamespace({ body: { metadata: { name: NS } } });
    await core.createNamespacedService({ namespace: NS, body: service });
  }
  const c1Service = await core1.readNamespacedService({ name: "lat", namespace: NS });
  const frontend = `${c1Service.spec?.clusterIP}:80/TCP`;
  const c2Worker = await core2.readNode({ name: "c2-worker" });
  const c2PodCidr = c2Worker.spec?.podCIDR ?? "";
  const [base] = c2PodCidr.split("/");
  const baseValue = base.split(".").reduce((a, o) => a * 256 + Number(o), 0);
  // addresses no pod uses (.100–.249 of the worker's /24): nothing is sent to them
  const address = (i: number) => ipv4(baseValue + 100 + (i % 150));
  let slice: V1EndpointSlice = await discovery2.createNamespacedEndpointSlice({
    namespace: NS,
    body: {
      metadata: { name: "lat-1", namespace: NS, labels: { "kubernetes.io/service-name": "lat" } },
      addressType: "IPv4",
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      endpoints: [{ addresses: [address(0)], conditions: { ready: true } }],
    },
  });
  const backendsAt = async () =>
    (await agentStatus(fixture.name, observer)).services
      .find((s) => s.frontend === frontend)
      ?.backends.map((b) => b.address) ?? [];
  await waitFor(
    "first remote backend in c1",
    async () => (await backendsAt()).includes(`${address(0)}:8080`),
    {
      timeoutMs: 30_000,
      intervalMs: 50,
    },
  );
  say(`measuring ${CHANGES} EndpointSlice changes in c2 → BPF backend in ${observer} …`);
  const latencies: number[] = [];
  for (let i = 1; i <= CHANGES; i++) {
    const wanted = `${address(i)}:8080`;
    const started = performance.now();
    slice = await discovery2.replaceNamespacedEndpointSlice({
      name: "lat-1",
      namespace: NS,
      body: { ...slice, endpoints: [{ addresses: [address(i)], conditions: { ready: true } }] },
    });
    await waitFor(`backend ${wanted}`, async () => (await backendsAt()).includes(wanted), {
      timeoutMs: 30_000,
      intervalMs: 2,
    });
    latencies.push(performance.now() - started);
  }
  latencies.sort((a, b) => a - b);

  // ---- 2. a large remote cluster ----
  const fake = await startFakeRemote(
    journal,
    FAKE_CLUSTER,
    {
      services: SERVICES,
      backends: BACKENDS,
      endpoints: ENDPOINTS,
      nodes: FAKE_NODES,
      identities: FAKE_IDENTITIES,
    },
    say,
  );
  cleanups.push(() => fake.stop());
  const writeSeconds = fake.writeSeconds;

  const secretData = (
    await core1.readNamespacedSecret({ name: MeshObjects.remotes, namespace: "kube-system" })
  ).data;
  const setRemotes = async (data: Record<string, string>) => {
    const secret = await core1.readNamespacedSecret({ name: MeshObjects.remotes, namespace: "kube-system" });
    await core1.replaceNamespacedSecret({
      name: MeshObjects.remotes,
      namespace: "kube-system",
      body: { ...secret, data },
    });
  };
  const bigRemoteConfig = fakeRemoteSecretValue(fake);
  const bigStatus = async () =>
    (await getAgentStatus(agentSocketPath(fixture.name, observer), 30_000)).clustermesh.remoteClusters.find(
      (r) => r.name === FAKE_CLUSTER.name,
    );
  const remoteIpcacheEntries = async () =>
    (await getAgentStatus(agentSocketPath(fixture.name, observer), 30_000)).ipcache.filter(
      (e) => e.remoteCluster,
    ).length;
  const agentPid = async () => {
    const [agentPod] = await meshPods(journal, "c1", MESH_POD_ROLES.agent, observer);
    return agentPod && containerProcess(journal, agentPod, "agent")?.pid;
  };
  const apps1 = kc("c1").makeApiClient(AppsV1Api);
  const daemonSet = () =>
    apps1.readNamespacedDaemonSet({ name: InstallNames.agentDaemonSet, namespace: MESH_NAMESPACE });
  const thisImage = (await daemonSet()).spec?.template.spec?.containers[0].image ?? "";

  /** Restarts c1's agents with `image` and waits for the observer's new agent to be connected to c2. */
  const rollAgent = async (image: string) => {
    const oldPid = await agentPid();
    const ds = await daemonSet();
    const container = ds.spec?.template.spec?.containers[0];
    if (!container) throw new Error("the agent DaemonSet has no container");
    container.image = image;
    // a new pod also when the image stays (as `kubectl rollout restart`): every build starts fresh
    const template = ds.spec?.template;
    if (template)
      template.metadata = {
        ...template.metadata,
        annotations: {
          ...template.metadata?.annotations,
          "bench.clustermesh.io/restarted-at": new Date().toISOString(),
        },
      };
    await apps1.replaceNamespacedDaemonSet({
      name: InstallNames.agentDaemonSet,
      namespace: MESH_NAMESPACE,
      body: ds,
    });
    await waitFor(
      `${observer}'s agent restarted with ${image}, connected to c2`,
      async () => {
        // the old container gone and the new one not started yet: not there, asked again
        const pid = await agentPid().catch(() => undefined);
        if (!pid || pid === oldPid) return false;
        // a starting agent does not answer yet: asked again until the deadline
        const status = await getAgentStatus(agentSocketPath(fixture.name, observer), 5_000).catch(
          () => undefined,
        );
        return status?.clustermesh.remoteClusters.find((r) => r.name === "c2")?.ready;
      },
      { timeoutMs: 180_000, intervalMs: 500 },
    );
  };

  /** Part 2 for the agent running now: idle RSS, then the large remote added, synced, removed. */
  const largeRemote = async () => {
    const pid = await agentPid();
    if (!pid) throw new Error(`no running agent container on ${observer}`);
    // a settle window, not a condition: the figure is the RSS of an agent left alone this long
    await new Promise((resolve) => setTimeout(resolve, IDLE_SETTLE_MS));
    const idle = rssMb(pid);
    say(`adding ${FAKE_CLUSTER.name} to c1's remotes Secret; waiting for ${observer} to sync …`);
    const started = performance.now();
    await setRemotes({ ...(secretData ?? {}), [FAKE_CLUSTER.name]: bigRemoteConfig });
    await waitFor(
      `${FAKE_CLUSTER.name} synced in ${observer}`,
      async () => {
        const s = await bigStatus();
        return (
          s?.ready &&
          s.numEndpoints === ENDPOINTS &&
          s.numSharedServices === SERVICES &&
          s.numNodes === FAKE_NODES
        );
      },
      { timeoutMs: 600_000, intervalMs: 250 },
    );
    const synced = (performance.now() - started) / 1000;
    await waitFor(
      `${ENDPOINTS} remote ipcache entries in ${observer}'s BPF map`,
      async () => (await remoteIpcacheEntries()) >= ENDPOINTS,
      { timeoutMs: 600_000, intervalMs: 500 },
    );
    const programmed = (performance.now() - started) / 1000;
    const loadedNow = rssMb(pid);
    // the same settle window as idle: what the agent keeps, not the garbage of the status polls above
    await new Promise((resolve) => setTimeout(resolve, IDLE_SETTLE_MS));
    const loaded = rssMb(pid);
    const rejected = (await bigStatus())?.rejectedNow ?? {};
    say(`removing ${FAKE_CLUSTER.name}; waiting for ${observer} to drain it …`);
    await setRemotes({ ...(secretData ?? {}) });
    await waitFor(
      `${FAKE_CLUSTER.name} drained from ${observer}`,
      async () => !(await bigStatus()) && (await remoteIpcacheEntries()) < ENDPOINTS,
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    return { idle, loadedNow, loaded, synced, programmed, rejected };
  };

  const builds: { label: string; image?: string }[] = BEFORE
    ? [
        { label: "--before", image: BEFORE_IMAGE },
        { label: "this build", image: thisImage },
      ]
    : [{ label: "this build" }];
  // the second build measured meets a remote etcd that already served one full list: swapping the
  // order tells that apart from a difference between the builds
  if (process.argv.includes("--this-build-first")) builds.reverse();
  if (BEFORE) {
    say(`building the --before image layers from ${BEFORE} …`);
    const layers = spawnSync("bash", [join(BEFORE, "image", "lab-layers.sh")], { encoding: "utf8" });
    if (layers.status !== 0) throw new Error(`--before image layers failed: ${layers.stderr.slice(-2000)}`);
    const image = JSON.parse(layers.stdout) as { layers: string[]; env: Record<string, string> };
    loadImages(join(journal.path(), "images.json"), {
      [BEFORE_IMAGE]: { ...image, entrypoint: [], cmd: ["meshctl", "--help"] },
    });
  }
  const results: (Awaited<ReturnType<typeof largeRemote>> & { label: string })[] = [];
  for (const build of builds) {
    if (build.image) {
      say(`switching c1's agents to ${build.label} (${build.image}) …`);
      await rollAgent(build.image);
    }
    results.push({ label: build.label, ...(await largeRemote()) });
  }

  const perEndpoint = (r: (typeof results)[number]) =>
    `${(((r.loaded - r.idle) * 1024 * 1024) / ENDPOINTS / 1024).toFixed(2)} KiB`;
  const column = (value: (r: (typeof results)[number]) => string) => results.map(value).join(" | ");
  const rows: [string, string][] = [
    [
      `propagation c2 EndpointSlice → c1 BPF backend, p50 (${CHANGES} changes)`,
      `${percentile(latencies, 50).toFixed(0)} ms`,
    ],
    ["propagation p99", `${percentile(latencies, 99).toFixed(0)} ms`],
    ["propagation max", `${latencies[latencies.length - 1].toFixed(0)} ms`],
    [
      `large remote: ${SERVICES} services × ${BACKENDS} backends, ${ENDPOINTS} endpoints, ${FAKE_NODES} nodes, ${FAKE_IDENTITIES} identities — written in`,
      `${writeSeconds.toFixed(1)} s (${fake.keys} keys)`,
    ],
    [`builds measured`, column((r) => r.label)],
    ["large remote: Secret written → agent reports it synced", column((r) => `${r.synced.toFixed(1)} s`)],
    [
      "large remote: Secret written → all endpoints in the BPF ipcache",
      column((r) => `${r.programmed.toFixed(1)} s`),
    ],
    [
      `agent RSS idle (c2 only, ${IDLE_SETTLE_MS / 1000} s after ready)`,
      column((r) => `${r.idle.toFixed(0)} MB`),
    ],
    ["agent RSS with the large remote, when programmed", column((r) => `${r.loadedNow.toFixed(0)} MB`)],
    [
      `agent RSS with the large remote, ${IDLE_SETTLE_MS / 1000} s later (no status reads)`,
      column((r) => `${r.loaded.toFixed(0)} MB`),
    ],
    ["agent RSS per remote endpoint ((with, settled − idle) / endpoints)", column(perEndpoint)],
    ["large remote entries rejected now", column((r) => JSON.stringify(r.rejected))],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\n| ${"measurement".padEnd(width)} | value |\n|${"-".repeat(width + 2)}|-------|\n`);
  for (const [k, v] of rows) process.stdout.write(`| ${k.padEnd(width)} | ${v} |\n`);
}

try {
  await main();
} catch (error) {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
