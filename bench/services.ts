/**
 * Service load-balancing benchmark (root), issue 5 (a): connection rate (connect + one small
 * request/response + close, per second) and keep-alive request rate from a client pod to a server
 * pod, side by side in one run:
 *   - straight to the pod IP through our datapath (the baseline, 1.00),
 *   - through a ClusterIP with our datapath: socket LB (client in the LB cgroup) and per-packet NAT
 *     (client outside it),
 *   - straight to the pod IP through plain kernel routing with kube-proxy's rules loaded, and
 *     through a ClusterIP with kube-proxy-style iptables rules (KUBE-SERVICES → KUBE-SVC → KUBE-SEP,
 *     statistic random, DNAT) in the node netns,
 * each with 1, 1k and 10k services installed (only one is exercised: the others make the rule walk
 * and the map sizes realistic). Topology: one node netns, two client/server pairs of pod netns on
 * veths: pair A's host veths carry our programs, pair B's are plain (kernel routing + iptables).
 * Nothing is connected to the root namespace; everything is removed at the end, on failure and on
 * SIGINT/SIGTERM.
 *
 *   npx tsc -p . && make -s -C bpf && node dist/bench/services.js
 *     [--seconds 1] [--rounds 5] [--impl c|node] [--counts 1,1000,10000] [--concurrency 8] [--iptables legacy|nft]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { reconcileMaps } from "../bpf/datapath/apply.js";
import { Proto } from "../bpf/datapath/codecs.js";
import { Datapath } from "../bpf/datapath/loader.js";
import type { DesiredEndpoint, DesiredService } from "../bpf/datapath/reconcile.js";
import { createTestCgroup, mountPrivateBpffs, type PrivateBpffs, uniqueSuffix } from "../bpf/testing.js";
import { runSync } from "../lib/exec.js";
import { type ProcessRef, startDaemon, stopProcess, waitFor } from "../lib/process.js";

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && process.argv[at + 1] !== undefined ? process.argv[at + 1] : fallback;
}

const SECONDS = Number(option("seconds", "1"));
const ROUNDS = Number(option("rounds", "5"));
const COUNTS = option("counts", "1,1000,10000").split(",").map(Number);
const CONCURRENCY = Number(option("concurrency", "8"));
const IPTABLES = option("iptables", "legacy");
/** c: services-load.c/services-server.c compiled with cc at start; node: the .js twins. */
const IMPL = option("impl", "c");
if (IMPL !== "c" && IMPL !== "node") throw new Error("--impl c|node");
if (IPTABLES !== "legacy" && IPTABLES !== "nft") throw new Error("--iptables legacy|nft");
if (process.getuid?.() !== 0) {
  console.error("services bench: must run as root (network namespaces, BPF, iptables)");
  process.exit(1);
}

const SOURCE_DIR = fileURLToPath(new URL("../../bench/", import.meta.url));
let loadArgv = [process.execPath, fileURLToPath(new URL("./services-load.js", import.meta.url))];
let serverArgv = [process.execPath, fileURLToPath(new URL("./services-server.js", import.meta.url))];

const id = uniqueSuffix();
const NODE = `bs${id}n`;
const GATEWAY = "169.254.1.1";
const POD_CIDR = "10.1.0.0/16";
const BACKEND_PORTS = [8080, 8081];

interface Pod {
  netns: string;
  hostIf: string;
  ip: string;
}
const pods = {
  clientA: { netns: `bs${id}ca`, hostIf: `lxbs${id}ca`, ip: "10.1.0.10" },
  // per-packet NAT gets its own client: see natClient below
  clientN: { netns: `bs${id}cn`, hostIf: `lxbs${id}cn`, ip: "10.1.0.11" },
  serverA: { netns: `bs${id}sa`, hostIf: `lxbs${id}sa`, ip: "10.1.0.20" },
  clientB: { netns: `bs${id}cb`, hostIf: `lxbs${id}cb`, ip: "10.1.0.30" },
  serverB: { netns: `bs${id}sb`, hostIf: `lxbs${id}sb`, ip: "10.1.0.40" },
} satisfies Record<string, Pod>;

/** Service i (1-based) of our maps and of the iptables rules: distinct ranges, same shape. */
const ourVip = (i: number) => `10.96.${(i >> 8) & 0xff}.${i & 0xff}`;
const iptVip = (i: number) => `10.97.${(i >> 8) & 0xff}.${i & 0xff}`;
/** Two backends per unexercised service: pod IPs nobody answers on (never reached). */
const fakeBackends = (i: number) => [
  `10.1.${128 + (i >> 8)}.${i & 0xff}`,
  `10.1.${192 + (i >> 8)}.${i & 0xff}`,
];
/** The exercised service sits in the middle of the list: an average position in KUBE-SERVICES. */
const exercised = (count: number) => Math.floor(count / 2) + 1;
/**
 * Its VIP is the same at every count (outside the numbered range). Works around two datapath
 * issues (reported, bpf/ is not ours): conntrack entries never expire and are not removed when a
 * flow closes, and a conntrack hit keeps its backend id as long as a backend with that id exists,
 * even when the id now belongs to another service. So: the conntrack map is flushed after each
 * (re)programming (untimed), and the per-packet NAT client is a pod of its own, because a client
 * port used through the VIP and later reused straight to the backend (direct, socket LB) finds the
 * old flow's reply entry and gets its SYN-ACK rewritten to the VIP.
 */
const OUR_HIT_VIP = "10.96.255.254";
const IPT_HIT_VIP = "10.97.255.254";

function sh(netns: string, command: string, timeoutMs = 30_000, input?: string): string {
  return runSync(["nsenter", `--net=/run/netns/${netns}`, "sh", "-c", command], { timeoutMs, input });
}

function linkInfo(netns: string, name: string): { ifindex: number; address: string } {
  const [info] = JSON.parse(sh(netns, `ip -j link show dev ${name}`));
  return { ifindex: info.ifindex, address: info.address };
}

// ---------------------------------------------------------------- clean-up (also on signals) ----

let bpffs: PrivateBpffs | undefined;
let datapath: Datapath | undefined;
let cgroup: { path: string; cleanup(): void } | undefined;
let logDir: string | undefined;
const servers: ProcessRef[] = [];
const children = new Set<ChildProcess>();
const namespaces: string[] = [];

let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  const problems: string[] = [];
  const attempt = async (what: string, fn: () => unknown) => {
    try {
      await fn();
    } catch (error) {
      problems.push(`${what}: ${(error as Error).message}`);
    }
  };
  for (const child of children) await attempt(`client PID ${child.pid}`, () => child.kill("SIGKILL"));
  for (const server of servers) await attempt(`server PID ${server.pid}`, () => stopProcess(server, 2_000));
  await attempt("datapath", () => {
    datapath?.detachAll();
    datapath?.close();
  });
  // deleting the namespaces removes the veths and every iptables rule we installed
  for (const name of namespaces)
    await attempt(
      `netns ${name}`,
      () => existsSync(`/run/netns/${name}`) && runSync(["ip", "netns", "del", name]),
    );
  await attempt("cgroup", async () => {
    if (!cgroup || !existsSync(cgroup.path)) return;
    const procs = () => readFileSync(join(cgroup?.path ?? "", "cgroup.procs"), "utf8").trim();
    if (procs()) writeFileSync(join(cgroup.path, "cgroup.kill"), "1");
    await waitFor("the cgroup to empty", () => procs() === "", { timeoutMs: 3_000 });
    rmdirSync(cgroup.path);
  });
  await attempt("bpffs", () => bpffs?.cleanup());
  if (logDir) rmSync(logDir, { recursive: true, force: true });
  if (problems.length > 0) console.error(`services bench: clean-up problems:\n${problems.join("\n")}`);
}

// an error escaping an event handler must not skip the clean-up either
process.on("uncaughtException", (error) => {
  console.error(`services bench: ${error.stack ?? error}`);
  void cleanup().finally(() => process.exit(1));
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    console.error(`services bench: ${signal}, cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

// ------------------------------------------------------------------------------- topology ----

function createPod(pod: Pod): void {
  runSync(["ip", "netns", "add", pod.netns]);
  namespaces.push(pod.netns);
  sh(
    NODE,
    `ip link add ${pod.hostIf} type veth peer name eth0 netns ${pod.netns} && ip link set ${pod.hostIf} up`,
  );
  const hostMac = linkInfo(NODE, pod.hostIf).address;
  sh(
    pod.netns,
    [
      "sysctl -qw net.ipv6.conf.all.disable_ipv6=1",
      // many short connections from one client: wide port range, TIME_WAIT reuse
      "sysctl -qw net.ipv4.ip_local_port_range='1024 65535'",
      "sysctl -qw net.ipv4.tcp_tw_reuse=1",
      "sysctl -qw net.core.somaxconn=4096",
      "ip link set lo up",
      "ip link set eth0 up",
      `ip addr add ${pod.ip}/32 dev eth0`,
      `ip route add ${GATEWAY} dev eth0 scope link`,
      `ip route add default via ${GATEWAY} dev eth0`,
      `ip neigh add ${GATEWAY} lladdr ${hostMac} dev eth0 nud permanent`,
    ].join(" && "),
  );
}

function endpointOf(pod: Pod, identity: number): DesiredEndpoint {
  const host = linkInfo(NODE, pod.hostIf);
  return {
    address: pod.ip,
    ifindex: host.ifindex,
    identity,
    mac: linkInfo(pod.netns, "eth0").address,
    nodeMac: host.address,
  };
}

/** Pair B goes through the node's own stack: a /32 route and a neighbour entry per pod. */
function kernelRoute(pod: Pod): void {
  const mac = linkInfo(pod.netns, "eth0").address;
  sh(
    NODE,
    `ip route add ${pod.ip}/32 dev ${pod.hostIf} && ip neigh add ${pod.ip} lladdr ${mac} dev ${pod.hostIf} nud permanent`,
  );
}

// --------------------------------------------------------------------------- services ----

function ourServices(count: number): DesiredService[] {
  const hit = exercised(count);
  return Array.from({ length: count }, (_, index) => {
    const i = index + 1;
    const backends =
      i === hit
        ? BACKEND_PORTS.map((port) => ({ address: pods.serverA.ip, port }))
        : fakeBackends(i).map((address) => ({ address, port: 8080 }));
    return {
      frontend: { address: i === hit ? OUR_HIT_VIP : ourVip(i), port: 80, proto: Proto.TCP },
      backends,
    };
  });
}

function chain(kind: "SVC" | "SEP", text: string): string {
  return `KUBE-${kind}-${createHash("sha256").update(text).digest("hex").slice(0, 16).toUpperCase()}`;
}

/** kube-proxy's nat table (iptables mode) for count ClusterIP services with two endpoints each. */
export function kubeProxyRules(count: number): string {
  const hit = exercised(count);
  const chains = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"];
  const rules = [
    `-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
    `-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES`,
    `-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING`,
    "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
    "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
    "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
    `-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully`,
  ];
  for (let i = 1; i <= count; i++) {
    const name = `bench/svc-${i}:http`;
    const vip = i === hit ? IPT_HIT_VIP : iptVip(i);
    const endpoints =
      i === hit
        ? BACKEND_PORTS.map((port) => `${pods.serverB.ip}:${port}`)
        : fakeBackends(i).map((address) => `${address}:8080`);
    const svc = chain("SVC", name);
    chains.push(svc);
    rules.push(
      `-A KUBE-SERVICES -d ${vip}/32 -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport 80 -j ${svc}`,
      `-A ${svc} ! -s ${POD_CIDR} -d ${vip}/32 -p tcp -m comment --comment "${name} cluster IP" -m tcp --dport 80 -j KUBE-MARK-MASQ`,
    );
    endpoints.forEach((endpoint, n) => {
      const sep = chain("SEP", `${name}->${endpoint}`);
      chains.push(sep);
      const pick =
        n < endpoints.length - 1
          ? ` -m statistic --mode random --probability ${(1 / (endpoints.length - n)).toFixed(11)}`
          : "";
      rules.push(
        `-A ${svc} -m comment --comment "${name} -> ${endpoint}"${pick} -j ${sep}`,
        `-A ${sep} -s ${endpoint.split(":")[0]}/32 -m comment --comment "${name}" -j KUBE-MARK-MASQ`,
        `-A ${sep} -p tcp -m comment --comment "${name}" -m tcp -j DNAT --to-destination ${endpoint}`,
      );
    });
  }
  rules.push(
    `-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`,
  );
  return [
    "*nat",
    ":PREROUTING ACCEPT [0:0]",
    ":INPUT ACCEPT [0:0]",
    ":OUTPUT ACCEPT [0:0]",
    ":POSTROUTING ACCEPT [0:0]",
    ...chains.map((name) => `:${name} - [0:0]`),
    ...rules,
    "COMMIT",
    "",
  ].join("\n");
}

/** Programs count services into our maps and into the node's iptables; returns both times (ms). */
function installServices(count: number, fromEmpty: boolean): { ours: number; iptables: number } {
  if (!datapath) throw new Error("datapath not loaded");
  const state = (services: DesiredService[]) => ({
    services,
    endpoints: [
      endpointOf(pods.clientA, 1001),
      endpointOf(pods.clientN, 1001),
      endpointOf(pods.serverA, 1002),
    ],
    remoteNodes: [],
    ipcache: [],
  });
  if (fromEmpty) reconcileMaps(datapath.maps, state([]));
  let start = process.hrtime.bigint();
  reconcileMaps(datapath.maps, state(ourServices(count)));
  const ours = Number(process.hrtime.bigint() - start) / 1e6;
  const conntrack = datapath.maps.conntrack;
  for (const key of [...conntrack.keys()]) conntrack.delete(key);
  const rules = kubeProxyRules(count);
  start = process.hrtime.bigint();
  sh(NODE, `iptables-${IPTABLES}-restore`, 120_000, rules);
  const iptables = Number(process.hrtime.bigint() - start) / 1e6;
  return { ours, iptables };
}

// ------------------------------------------------------------------------------ measuring ----

interface LoadResult {
  count: number;
  errors: number;
  lastError: string;
  rate: number;
}

/** Runs the load generator as a child (tracked, so a signal can kill it by PID). */
function load(argv: string[], timeoutMs: number): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      children.delete(child);
      try {
        resolve(JSON.parse(stdout) as LoadResult);
      } catch {
        reject(new Error(`load generator exited ${code}: ${stderr.trim() || stdout.trim()}`));
      }
    });
  });
}

interface Cell {
  name: string;
  /** where the client runs */
  client: Pod;
  socketLb?: boolean;
  host: (count: number) => string;
  port: number;
}

const cells: Cell[] = [
  { name: "direct to pod IP, our datapath", client: pods.clientA, host: () => pods.serverA.ip, port: 8080 },
  {
    name: "ClusterIP, ours: socket LB",
    client: pods.clientA,
    socketLb: true,
    host: () => OUR_HIT_VIP,
    port: 80,
  },
  {
    name: "ClusterIP, ours: per-packet NAT",
    client: pods.clientN,
    host: () => OUR_HIT_VIP,
    port: 80,
  },
  {
    name: "direct to pod IP, kernel routing + iptables",
    client: pods.clientB,
    host: () => pods.serverB.ip,
    port: 8080,
  },
  {
    name: "ClusterIP, kube-proxy iptables",
    client: pods.clientB,
    host: () => IPT_HIT_VIP,
    port: 80,
  },
];

async function measure(cell: Cell, mode: "conn" | "req", count: number): Promise<LoadResult> {
  const argv = [
    "nsenter",
    `--net=/run/netns/${cell.client.netns}`,
    ...loadArgv,
    mode,
    cell.host(count),
    String(cell.port),
    String(SECONDS),
    String(CONCURRENCY),
  ];
  const wrapped =
    cell.socketLb && cgroup
      ? ["sh", "-c", `echo $$ > '${cgroup.path}/cgroup.procs' && exec "$@"`, "sh", ...argv]
      : argv;
  const result = await load(wrapped, SECONDS * 1000 + 30_000);
  if (result.errors > 0)
    console.error(`  ${cell.name} ${mode} @${count}: ${result.errors} errors (last: ${result.lastError})`);
  return result;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

function table(headers: string[], rows: string[][]): string {
  const cellsOf = [headers, ...rows];
  const widths = headers.map((_, column) => Math.max(...cellsOf.map((row) => row[column].length)));
  const line = (row: string[]) =>
    `| ${row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join(" | ")} |`;
  return [
    line(headers),
    `|${widths.map((width, column) => (column === 0 ? "-".repeat(width + 2) : `${"-".repeat(width + 1)}:`)).join("|")}|`,
    ...rows.map(line),
  ].join("\n");
}

const fmt = (value: number) => Math.round(value).toLocaleString("en-US");
const ratio = (value: number, base: number) => (value / base).toFixed(2);

// ------------------------------------------------------------------------------------ main ----

async function main(): Promise<void> {
  const load1 = loadavg()[0];
  logDir = mkdtempSync(join(tmpdir(), `bs${id}-logs-`));
  if (IMPL === "c") {
    const binary = (name: string, extra: string[]) => {
      const out = join(logDir ?? "", name);
      runSync(["cc", "-O2", "-Wall", ...extra, "-o", out, join(SOURCE_DIR, `${name}.c`)]);
      return [out];
    };
    loadArgv = binary("services-load", ["-pthread"]);
    serverArgv = binary("services-server", []);
  }
  bpffs = mountPrivateBpffs(`bs${id}-bpffs-`);
  runSync(["ip", "netns", "add", NODE]);
  namespaces.push(NODE);
  sh(
    NODE,
    "sysctl -qw net.ipv6.conf.all.disable_ipv6=1 && sysctl -qw net.ipv4.ip_forward=1 && ip link set lo up",
  );
  for (const pod of Object.values(pods)) createPod(pod);
  kernelRoute(pods.clientB);
  kernelRoute(pods.serverB);

  datapath = Datapath.load({ pinRoot: join(bpffs.path, "node") });
  datapath.maps.setConfig({ tunnelIfindex: 0, flags: 0, worldIdentity: 2 });
  for (const pod of [pods.clientA, pods.clientN, pods.serverA])
    datapath.attachEndpoint(pod.hostIf, linkInfo(NODE, pod.hostIf).ifindex, {
      netnsPath: `/run/netns/${NODE}`,
    });
  cgroup = createTestCgroup(`bs${id}-client`);
  datapath.attachSocketLb("client", cgroup.path);

  for (const server of [pods.serverA, pods.serverB]) {
    servers.push(
      startDaemon({
        argv: [...serverArgv, ...BACKEND_PORTS.map(String)],
        netns: server.netns,
        logFile: join(logDir, `${server.netns}.log`),
      }),
    );
    await waitFor(`server in ${server.netns}`, () =>
      BACKEND_PORTS.every((port) => sh(server.netns, "ss -Hltn").includes(`0.0.0.0:${port}`)),
    );
  }

  console.log(
    `services bench: ${SECONDS} s per cell and round, ${ROUNDS} rounds (cells interleaved, medians), ` +
      `${CONCURRENCY} concurrent loops per client (${IMPL} client and server), iptables-${IPTABLES}, services ${COUNTS.join("/")}; ` +
      `load average at start ${loadavg()
        .map((v) => v.toFixed(2))
        .join(" ")}`,
  );
  // rates[count][cell][mode][round]; ratios are taken per round against the direct cell measured
  // next to it (paired), so the slow load swings of a shared machine cancel out
  const rates = new Map<number, Array<{ conn: number[]; req: number[] }>>();
  const install = new Map<number, { ours: number; iptables: number }>();
  for (const count of COUNTS)
    rates.set(
      count,
      cells.map(() => ({ conn: [], req: [] })),
    );
  for (let round = 1; round <= ROUNDS; round++) {
    for (const count of COUNTS) {
      const times = installServices(count, round === 1);
      if (round === 1) install.set(count, times);
      // the conntrack entries of earlier cells (TIME_WAIT: 120 s) must not fill the node's table
      sh(NODE, "sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=5 || true");
      const before = datapath.maps.readMetrics();
      const row = rates.get(count) ?? [];
      // alternate the order between rounds so no cell always runs first or last
      const order = [...cells.keys()];
      if (round % 2 === 0) order.reverse();
      for (const mode of ["conn", "req"] as const) {
        for (const index of order) row[index][mode].push((await measure(cells[index], mode, count)).rate);
      }
      const after = datapath.maps.readMetrics();
      const delta = (name: "SockLb" | "LbDnat") => after[name].packets - before[name].packets;
      if (delta("SockLb") === 0n || delta("LbDnat") === 0n)
        throw new Error(
          `our datapath did not translate (SockLb +${delta("SockLb")}, LbDnat +${delta("LbDnat")})`,
        );
      console.error(
        `  round ${round}, ${count} services (conn/s / req/s): ` +
          cells
            .map((cell, i) => `${cell.name}: ${fmt(row[i].conn.at(-1) ?? 0)}/${fmt(row[i].req.at(-1) ?? 0)}`)
            .join("; "),
      );
    }
  }

  const summary = new Map<
    number,
    Array<{ conn: number; req: number; connRatio: number; reqRatio: number }>
  >();
  const rows: string[][] = [];
  for (const count of COUNTS) {
    const row = rates.get(count) ?? [];
    const pairedRatio = (i: number, mode: "conn" | "req") =>
      median(row[i][mode].map((rate, round) => rate / row[0][mode][round]));
    const cellsSummary = cells.map((_, i) => ({
      conn: median(row[i].conn),
      req: median(row[i].req),
      connRatio: pairedRatio(i, "conn"),
      reqRatio: pairedRatio(i, "req"),
    }));
    summary.set(count, cellsSummary);
    for (const [i, cell] of cells.entries()) {
      const each = cellsSummary[i];
      rows.push([
        cell.name,
        fmt(count),
        fmt(each.conn),
        each.connRatio.toFixed(2),
        fmt(each.req),
        each.reqRatio.toFixed(2),
      ]);
    }
  }
  console.log("");
  console.log(
    table(
      ["path (client pod → server pod, same node)", "services", "conn/s", "× direct", "req/s", "× direct"],
      rows,
    ),
  );
  const first = summary.get(COUNTS[0]) ?? [];
  const last = summary.get(COUNTS.at(-1) ?? 0) ?? [];
  const firstCount = fmt(COUNTS[0]);
  const lastCount = fmt(COUNTS.at(-1) ?? 0);
  const worstOurs = Math.min(
    ...COUNTS.flatMap((count) =>
      (summary.get(count) ?? []).slice(1, 3).flatMap((cell) => [cell.connRatio, cell.reqRatio]),
    ),
  );
  const pct = (value: number) => `${Math.round(value * 100)}%`;
  console.log(
    `\nConclusion: our ClusterIP (socket LB and per-packet NAT) stays at ≥ ${pct(worstOurs)} of direct at every ` +
      `service count (goal ≥ 95%: ${worstOurs >= 0.95 ? "met" : "NOT met"}); kube-proxy iptables goes from ` +
      `${pct(first[4].connRatio)} of direct conn/s at ${firstCount} service(s) to ${pct(last[4].connRatio)} at ${lastCount}, ` +
      `and direct pod-to-pod through the same node stack from ${pct(first[3].connRatio)} to ${pct(last[3].connRatio)} ` +
      `(every new flow walks KUBE-SERVICES); keep-alive requests pay only at set-up (iptables ` +
      `${pct(first[4].reqRatio)} → ${pct(last[4].reqRatio)} of direct req/s).`,
  );

  console.log("");
  console.log(
    table(
      [
        "programming N services",
        "services",
        "ours: reconcileMaps ms",
        `iptables-${IPTABLES}-restore ms`,
        "ratio",
      ],
      COUNTS.map((count) => {
        const ours = install.get(count)?.ours ?? 0;
        const ipt = install.get(count)?.iptables ?? 0;
        return [
          "from none (ours) / whole table (iptables)",
          fmt(count),
          ours.toFixed(1),
          ipt.toFixed(1),
          ratio(ipt, ours),
        ];
      }),
    ),
  );
  console.log(
    `\nConclusion: one full programming pass of ${lastCount} services takes ${(install.get(COUNTS.at(-1) ?? 0)?.ours ?? 0).toFixed(0)} ms ` +
      `through our maps vs ${(install.get(COUNTS.at(-1) ?? 0)?.iptables ?? 0).toFixed(0)} ms through iptables-restore (kube-proxy rewrites the whole table on changes).`,
  );
  console.log(
    `\nload average: ${load1.toFixed(2)} at start, ${loadavg()
      .map((v) => v.toFixed(2))
      .join(" ")} at the end (2 shared cores: only the side-by-side ratios mean something)`,
  );
}

try {
  await main();
} catch (error) {
  console.error(`services bench failed: ${(error as Error).stack ?? error}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
