/**
 * The mesh at scale (issue 18 item 3), root, one lab: `meshctl lab up --clusters N` (default 10
 * one-node clusters), then side by side in that run:
 *   1. lab up wall time, load, RSS per process kind (lab processes and the mesh's containers);
 *   2. connect as a full mesh (lab/connect-mesh: `clustermesh connect --connection-mode mesh`) →
 *      every node reports every other cluster ready with its entries exactly in its BPF maps;
 *   3. sessions per clustermesh etcd: client connections, leases, watch streams, watchers;
 *   4. propagation: an EndpointSlice change of a global service in cluster1 → the backend in the
 *      BPF service map of every other cluster's node (read through each agent's status API, which
 *      reads the pinned maps), p50/p99 per observer and until the last of them has it.
 * `--kvstoremesh on|off` picks the clustermesh-apiserver's mode (Cilium's
 * clustermesh.apiserver.kvstoremesh.enabled; `off`: agents watch every remote's etcd). The lab is removed at the end, also on failure and SIGINT.
 *
 *   npx tsc -p . && node dist/bench/mesh-scale.js [--kvstoremesh off|on] [--clusters 10]
 *     [--changes 50] [--name meshscl] [-o json]
 *   node dist/bench/mesh-scale.js --lab NAME   (a lab already up and connected: 1 and 2 are skipped)
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CoreV1Api, DiscoveryV1Api, KubeConfig, type V1EndpointSlice } from "@kubernetes/client-node";
import { agentStatus } from "../lab/agent-socket.js";
import { connectLabMesh } from "../lab/connect-mesh.js";
import { componentKubeconfigPath } from "../lab/control-plane.js";
import { LabJournal } from "../lab/state.js";
import { waitFor } from "../lib/process.js";
import { MESHCTL } from "../testing/lab-fixture.js";
import { cleanup, cleanupOnSignals, cleanups } from "./cleanups.js";
import { type EtcdSessions, etcdSessions } from "./etcd-sessions.js";
import { type KindRss, labRssByKind } from "./lab-rss.js";

const { values } = parseArgs({
  options: {
    kvstoremesh: { type: "string", default: "off" },
    clusters: { type: "string", default: "10" },
    changes: { type: "string", default: "50" },
    name: { type: "string", default: "meshscl" },
    /** An existing, connected lab: measured as it is (no lab up, no connect; the lab is left up). */
    lab: { type: "string" },
    output: { type: "string", short: "o", default: "text" },
  },
});
const MODE = values.kvstoremesh;
const CLUSTERS = Number(values.clusters);
const CHANGES = Number(values.changes);
const NS = "bench";

cleanupOnSignals();
const say = (line: string) => process.stderr.write(`${line}\n`);
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
const ipv4 = (value: number) => [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join(".");

/** meshctl with the bench's own kubeconfig, its output passed through; resolves with the exit code. */
function meshctl(args: string[], env: NodeJS.ProcessEnv): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MESHCTL, ...args], {
      stdio: ["ignore", "inherit", "inherit"],
      env,
    });
    child.on("exit", (code) => resolve(code));
  });
}

interface Report {
  mode: string;
  clusters: number;
  labUpSeconds?: number;
  loadDuringUp?: { max1m: number; end1m: number };
  rssMiB: { byKind: Record<string, KindRss>; total: number };
  connectSeconds?: number;
  connectToProgrammedSeconds?: number;
  sessions: EtcdSessions[];
  propagation: { changes: number; observers: number; perObserver: Stat; allObservers: Stat };
  loadAfter1m: number;
}
interface Stat {
  p50: number;
  p99: number;
  max: number;
}
const stat = (values: number[]): Stat => {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] };
};

/** `meshctl lab up --clusters N --no-connect` in the bench's own kubeconfig, removed at the end. */
async function labUp(): Promise<{ seconds: number; load: { max1m: number; end1m: number } }> {
  const dir = mkdtempSync(join(tmpdir(), "mesh-scale-"));
  const env = { ...process.env, KUBECONFIG: join(dir, "kubeconfig") };
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(async () => {
    await meshctl(["lab", "down", "--name", values.name], env);
  });
  say(`lab up: ${CLUSTERS} one-node clusters, KVStoreMesh ${MODE} …`);
  let maxLoad = 0;
  const loadTimer = setInterval(() => {
    maxLoad = Math.max(maxLoad, loadavg()[0]);
  }, 2_000);
  const began = performance.now();
  const code = await meshctl(
    [
      "lab",
      "up",
      "--name",
      values.name,
      "--clusters",
      String(CLUSTERS),
      "--no-connect",
      "--kvstoremesh",
      MODE,
    ],
    env,
  );
  clearInterval(loadTimer);
  if (code !== 0) throw new Error(`lab up exited ${code}`);
  return { seconds: (performance.now() - began) / 1000, load: { max1m: maxLoad, end1m: loadavg()[0] } };
}

async function main(): Promise<Report> {
  if (MODE !== "on" && MODE !== "off") throw new Error(`--kvstoremesh: "${MODE}" is not on or off`);
  const up = values.lab ? undefined : await labUp();
  const labName = values.lab ?? values.name;
  const journal = LabJournal.open(labName);
  if (!journal) throw new Error(`lab ${labName} has no journal`);
  const plan = journal.snapshot.plan;

  // the global service in every cluster before the connect, so "programmed" includes its backends
  const kc = (cluster: string) => {
    const config = new KubeConfig();
    config.loadFromFile(componentKubeconfigPath(journal, cluster, "meshctl"));
    return config;
  };
  const service = {
    metadata: { name: "lat", namespace: NS, annotations: { "service.cilium.io/global": "true" } },
    spec: { ports: [{ name: "http", port: 80, targetPort: 8080 as never, protocol: "TCP" }] },
  };
  const frontends = new Map<string, string>();
  for (const cluster of plan.clusters) {
    const core = kc(cluster.name).makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NS } } });
    cleanups.push(async () => {
      await core.deleteNamespace({ name: NS });
    });
    const created = await core.createNamespacedService({ namespace: NS, body: service });
    frontends.set(cluster.name, `${created.spec?.clusterIP}:80/TCP`);
  }
  const [source, ...observers] = plan.clusters;
  const sourceNode = source.nodes[0].name;
  const podCidr = (await kc(source.name).makeApiClient(CoreV1Api).readNode({ name: sourceNode })).spec
    ?.podCIDR;
  if (!podCidr) throw new Error(`${sourceNode} has no pod CIDR`);
  const base = podCidr
    .split("/")[0]
    .split(".")
    .reduce((a, o) => a * 256 + Number(o), 0);
  // addresses no pod uses (.100–.249 of the node's range): nothing is ever sent to them
  const address = (i: number) => ipv4(base + 100 + (i % 150));
  const discovery = kc(source.name).makeApiClient(DiscoveryV1Api);
  let slice: V1EndpointSlice = await discovery.createNamespacedEndpointSlice({
    namespace: NS,
    body: {
      metadata: { name: "lat-1", namespace: NS, labels: { "kubernetes.io/service-name": "lat" } },
      addressType: "IPv4",
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      endpoints: [{ addresses: [address(0)], conditions: { ready: true } }],
    },
  });

  // ---- 2. connect → every node programmed ----
  if (up) say(`connecting ${plan.clusters.length} clusters as a full mesh …`);
  const connected = up
    ? await connectLabMesh(journal, plan, { timeoutMs: 600_000, progress: say })
    : undefined;
  const rss = await labRssByKind(journal);

  // ---- 3. sessions per clustermesh etcd ----
  const sessions: EtcdSessions[] = [];
  for (const cluster of plan.clusters) sessions.push(await etcdSessions(journal, cluster.name));

  // ---- 4. propagation to every other cluster ----
  const observerNodes = observers.map((cluster) => ({
    cluster: cluster.name,
    node: cluster.nodes[0].name,
    frontend: frontends.get(cluster.name) as string,
  }));
  const hasBackend = async (observer: (typeof observerNodes)[number], wanted: string) =>
    (await agentStatus(plan.name, observer.node)).services
      .find((s) => s.frontend === observer.frontend)
      ?.backends.some((b) => b.address === wanted) ?? false;
  await waitFor(
    "the first backend in every other cluster",
    async () =>
      (await Promise.all(observerNodes.map((o) => hasBackend(o, `${address(0)}:8080`)))).every(Boolean),
    { timeoutMs: 120_000, intervalMs: 200 },
  );
  say(
    `measuring ${CHANGES} EndpointSlice changes in ${source.name} → BPF backend in ${observers.length} clusters …`,
  );
  const perObserver: number[] = [];
  const allObservers: number[] = [];
  for (let i = 1; i <= CHANGES; i++) {
    const wanted = `${address(i)}:8080`;
    const started = performance.now();
    slice = await discovery.replaceNamespacedEndpointSlice({
      name: "lat-1",
      namespace: NS,
      body: { ...slice, endpoints: [{ addresses: [address(i)], conditions: { ready: true } }] },
    });
    const seen = await Promise.all(
      observerNodes.map(async (observer) => {
        await waitFor(`${wanted} in ${observer.node}`, () => hasBackend(observer, wanted), {
          timeoutMs: 60_000,
          intervalMs: 10,
        });
        return performance.now() - started;
      }),
    );
    perObserver.push(...seen);
    allObservers.push(Math.max(...seen));
  }
  return {
    mode: MODE,
    clusters: plan.clusters.length,
    labUpSeconds: up?.seconds,
    loadDuringUp: up?.load,
    rssMiB: { byKind: rss, total: Object.values(rss).reduce((sum, k) => sum + k.mib, 0) },
    connectSeconds: connected && connected.connectMs / 1000,
    connectToProgrammedSeconds: connected && connected.programmedMs / 1000,
    sessions,
    propagation: {
      changes: CHANGES,
      observers: observerNodes.length,
      perObserver: stat(perObserver),
      allObservers: stat(allObservers),
    },
    loadAfter1m: loadavg()[0],
  };
}

function printText(report: Report): void {
  const rows: [string, string][] = [
    ["KVStoreMesh", report.mode],
    [`lab up --clusters ${report.clusters} (no connect)`, seconds(report.labUpSeconds)],
    [
      "load (1 min) during lab up: max / at its end",
      report.loadDuringUp
        ? `${report.loadDuringUp.max1m.toFixed(1)} / ${report.loadDuringUp.end1m.toFixed(1)}`
        : "not measured (--lab)",
    ],
    ["connect (full mesh, one Secret write per cluster)", seconds(report.connectSeconds)],
    [
      `connect → every node programmed with every other cluster (${report.clusters * (report.clusters - 1)} node × remote pairs)`,
      seconds(report.connectToProgrammedSeconds),
    ],
    [
      `propagation ${report.propagation.changes} changes → one other cluster's BPF map, p50 / p99 / max`,
      `${fmt(report.propagation.perObserver)}`,
    ],
    [
      `propagation → all ${report.propagation.observers} other clusters' BPF maps, p50 / p99 / max`,
      `${fmt(report.propagation.allObservers)}`,
    ],
    ["RSS total (lab processes + mesh containers)", `${(report.rssMiB.total / 1024).toFixed(2)} GiB`],
    ...Object.entries(report.rssMiB.byKind)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([kind, k]): [string, string] => [
        `  RSS ${kind} (${k.count})`,
        `${k.mib.toFixed(0)} MiB, ${(k.mib / k.count).toFixed(0)} MiB each`,
      ]),
    ...report.sessions.map((s): [string, string] => [
      `clustermesh etcd of ${s.cluster}: connections / leases / watch streams / watchers`,
      `${s.connections} / ${s.leases} / ${s.watchStreams} / ${s.watchers}`,
    ]),
    ["load (1 min) at the end", report.loadAfter1m.toFixed(1)],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  process.stdout.write(`\n| ${"measurement".padEnd(width)} | value |\n|${"-".repeat(width + 2)}|-------|\n`);
  for (const [k, v] of rows) process.stdout.write(`| ${k.padEnd(width)} | ${v} |\n`);
}
const seconds = (value: number | undefined) =>
  value === undefined ? "not measured (--lab)" : `${value.toFixed(1)} s`;
const fmt = (s: Stat) => `${s.p50.toFixed(0)} / ${s.p99.toFixed(0)} / ${s.max.toFixed(0)} ms`;

try {
  const report = await main();
  if (values.output === "json") process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else printText(report);
} catch (error) {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? error}\n`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
