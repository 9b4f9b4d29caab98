/**
 * Cost of drift repair in the clustermesh-apiserver's sync store (issue 12, item 1), side by side
 * in one run against one real etcd: no repair (baseline), an etcd watch on the prefix, and a
 * keys-only listing every --poll-ms. The store holds --services global services of --backends
 * backends each (the large remote of bench/clustermesh.ts), encoded as the apiserver writes them.
 * Per mode: the initial sync, an idle window, a churn round (every service changes once), and the
 * time to repair a deleted, an altered and a stray key. Costs: CPU of this process (the writer),
 * CPU of etcd, and bytes etcd sent to / received from its clients (its own gRPC counters).
 *
 *   npx tsc -p . && node dist/bench/kvstore-drift.js [--services 10000] [--backends 10]
 *     [--idle-s 15] [--poll-ms 2000] [--repairs 10]
 */
import { readFileSync } from "node:fs";
import { request } from "node:https";
import type { Etcd3 } from "etcd3";
import { LeaseManager } from "../lib/kvstore/leases.js";
import { keys, SERVICES_PREFIX } from "../lib/kvstore/paths.js";
import { SyncStore } from "../lib/kvstore/sync-store.js";
import { TestEtcd } from "../lib/kvstore/testing.js";
import { encodeService } from "../lib/kvstore/values/service.js";
import { silentLogger } from "../lib/log.js";
import { waitFor } from "../lib/process.js";

function option(name: string, fallback: string): number {
  const at = process.argv.indexOf(`--${name}`);
  return Number(at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1] : fallback);
}

const SERVICES = option("services", "10000");
const BACKENDS = option("backends", "10");
const IDLE_MS = option("idle-s", "15") * 1000;
const POLL_MS = option("poll-ms", "2000");
const REPAIRS = option("repairs", "10");
const log = silentLogger();
const say = (line: string) => process.stderr.write(`${line}\n`);

const ipv4 = (value: number) => [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join(".");

function serviceValue(cluster: string, s: number, generation: number): string {
  const backends = Object.fromEntries(
    Array.from({ length: BACKENDS }, (_, b) => [
      ipv4(0x0a000000 + ((s * BACKENDS + b + generation) % 0xffffff)),
      { http: { Protocol: "TCP" as const, Port: 8080 } },
    ]),
  );
  return encodeService({
    cluster,
    namespace: `ns-${s % 100}`,
    name: `svc-${s}`,
    frontends: { [ipv4(0x0a600000 + s)]: { http: { Protocol: "TCP", Port: 80 } } },
    backends,
    labels: {},
    selector: { app: `svc-${s}` },
    includeExternal: true,
    shared: true,
    clusterID: 1,
  });
}

/** etcd's own counters: bytes sent to and received from gRPC clients, and its CPU time. */
async function etcdCounters(etcd: TestEtcd): Promise<{ sent: number; received: number; cpuMs: number }> {
  const tls = etcd.tls("root");
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(`${etcd.url}/metrics`, { ca: tls.ca, cert: tls.cert, key: tls.key }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve(body));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
  const counter = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1] ?? Number.NaN);
  const pid = etcd.server?.process.pid ?? 0;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  const ticks = Number(stat[11]) + Number(stat[12]); // utime + stime, clock ticks (100/s)
  return {
    sent: counter("etcd_network_client_grpc_sent_bytes_total"),
    received: counter("etcd_network_client_grpc_received_bytes_total"),
    cpuMs: ticks * 10,
  };
}

interface Cost {
  wallMs: number;
  writerCpuMs: number;
  etcdCpuMs: number;
  sentMB: number;
  receivedMB: number;
}

async function measure(etcd: TestEtcd, work: () => Promise<void>): Promise<Cost> {
  const etcdBefore = await etcdCounters(etcd);
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  await work();
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  const etcdAfter = await etcdCounters(etcd);
  return {
    wallMs,
    writerCpuMs: (cpu.user + cpu.system) / 1000,
    etcdCpuMs: etcdAfter.cpuMs - etcdBefore.cpuMs,
    sentMB: (etcdAfter.sent - etcdBefore.sent) / 1e6,
    receivedMB: (etcdAfter.received - etcdBefore.received) / 1e6,
  };
}

interface ModeResult {
  mode: string;
  sync: Cost;
  idle: Cost;
  churn: Cost;
  repairMs: { missing: number[]; altered: number[]; stray: number[] };
  listings: number;
}

async function runMode(etcd: TestEtcd, mode: "off" | "watch" | "poll", index: number): Promise<ModeResult> {
  const cluster = `bench${index}-${mode}`;
  const client: Etcd3 = etcd.client("root");
  const tamper: Etcd3 = etcd.client("root");
  const leases = new LeaseManager(client, { ttlSeconds: 600, log });
  const prefix = `${SERVICES_PREFIX}/${cluster}`;
  const store = new SyncStore({
    client,
    leases,
    prefix,
    canary: { clusterName: cluster, syncedKey: SERVICES_PREFIX },
    driftRepair: mode,
    driftPollIntervalMs: POLL_MS,
    log,
  });
  const suffix = (s: number) => `ns-${s % 100}/svc-${s}`;
  const settled = () =>
    waitFor("writes settled", () => store.pending === 0, { timeoutMs: 300_000, intervalMs: 20 });
  try {
    const sync = await measure(etcd, async () => {
      await store.start();
      for (let s = 0; s < SERVICES; s++) store.upsert(suffix(s), serviceValue(cluster, s, 0));
      store.synced();
      await store.whenSynced();
    });
    // the watch's echo of the initial writes is still arriving: let it drain before the idle window
    if (mode === "watch") {
      const last = BigInt((await client.get(keys.canary(cluster, SERVICES_PREFIX)).exec()).header.revision);
      await waitFor("own writes observed", () => store.observedRevision >= last - 1n, { timeoutMs: 120_000 });
    }
    const idle = await measure(etcd, () => new Promise((resolve) => setTimeout(resolve, IDLE_MS)));
    const churn = await measure(etcd, async () => {
      for (let s = 0; s < SERVICES; s++) store.upsert(suffix(s), serviceValue(cluster, s, 1));
      await settled();
    });
    const repairMs: ModeResult["repairMs"] = { missing: [], altered: [], stray: [] };
    if (mode !== "off") {
      for (let i = 0; i < REPAIRS; i++) {
        // a different key per drift: repairs of one key in quick succession back off (drift.ts)
        const serviceKey = (s: number) => keys.service(cluster, `ns-${s % 100}`, `svc-${s}`);
        let key = serviceKey(i * 7);
        let want = serviceValue(cluster, i * 7, 1);
        let start = performance.now();
        await tamper.delete().key(key);
        await waitFor("missing repaired", async () => (await tamper.get(key).string()) === want, {
          timeoutMs: 30_000,
          intervalMs: 5,
        });
        repairMs.missing.push(performance.now() - start);
        key = serviceKey(i * 7 + 1);
        want = serviceValue(cluster, i * 7 + 1, 1);
        start = performance.now();
        await tamper.put(key).value("{}");
        await waitFor("altered repaired", async () => (await tamper.get(key).string()) === want, {
          timeoutMs: 30_000,
          intervalMs: 5,
        });
        repairMs.altered.push(performance.now() - start);
        const stray = `${prefix}/intruder/x${i}`;
        start = performance.now();
        await tamper.put(stray).value("{}");
        await waitFor("stray repaired", async () => (await tamper.get(stray).string()) === null, {
          timeoutMs: 30_000,
          intervalMs: 5,
        });
        repairMs.stray.push(performance.now() - start);
      }
      const counted = store.stats.repairs;
      if (counted.missing < REPAIRS || counted.altered < REPAIRS || counted.stray < REPAIRS)
        throw new Error(`repairs not counted: ${JSON.stringify(counted)}`);
    }
    return {
      mode: mode === "poll" ? `poll ${POLL_MS} ms` : mode,
      sync,
      idle,
      churn,
      repairMs,
      listings: store.driftListings,
    };
  } finally {
    await store.stop();
    leases.close();
    await client.delete().prefix(`${prefix}/`);
  }
}

const median = (values: number[]) => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "-");

async function main(): Promise<void> {
  const etcd = new TestEtcd();
  const stop = () => etcd.stop();
  for (const signal of ["SIGINT", "SIGTERM"] as const)
    process.on(signal, () => void stop().finally(() => process.exit(130)));
  await etcd.start();
  const results: ModeResult[] = [];
  try {
    const modes = ["off", "watch", "poll"] as const;
    for (const [index, mode] of modes.entries()) {
      say(`${mode}: ${SERVICES} services × ${BACKENDS} backends …`);
      results.push(await runMode(etcd, mode, index));
    }
  } finally {
    await stop();
  }
  const idleS = IDLE_MS / 1000;
  const rows = [
    [
      "mode",
      "sync s",
      "sync writer CPU ms",
      "sync etcd→client MB",
      "idle writer CPU ms/s",
      "idle etcd CPU ms/s",
      "idle etcd→client kB/s",
      "idle client→etcd kB/s",
      "churn s",
      "churn writer CPU ms",
      "churn etcd→client MB",
      "repair p50/max ms (missing, altered, stray)",
    ],
    ...results.map((r) => [
      r.mode,
      fmt(r.sync.wallMs / 1000, 1),
      fmt(r.sync.writerCpuMs),
      fmt(r.sync.sentMB, 1),
      fmt(r.idle.writerCpuMs / idleS, 1),
      fmt(r.idle.etcdCpuMs / idleS, 1),
      fmt((r.idle.sentMB * 1000) / idleS, 1),
      fmt((r.idle.receivedMB * 1000) / idleS, 1),
      fmt(r.churn.wallMs / 1000, 1),
      fmt(r.churn.writerCpuMs),
      fmt(r.churn.sentMB, 1),
      r.mode === "off"
        ? "-"
        : (["missing", "altered", "stray"] as const)
            .map((k) => `${fmt(median(r.repairMs[k]))}/${fmt(Math.max(...r.repairMs[k]))}`)
            .join(", "),
    ]),
  ];
  process.stdout.write(`${rows.map((row) => `| ${row.join(" | ")} |`).join("\n")}\n`);
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
