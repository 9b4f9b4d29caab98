/**
 * CNI ADD+DEL latency benchmark (root), issue 5 (b): our plugin (through a running agent, with a
 * Kubernetes API where the pod exists) vs the reference `bridge` + `host-local` plugins
 * (containernetworking-plugins in /usr/lib/cni), invoked exactly like a runtime: the plugin
 * executable from a CNI bin dir, environment + network config on stdin, a new netns per pod, run
 * from the node's netns. Pairs are interleaved (ours, reference, ours, …) so drift hits both.
 * Also reports what start-up costs: nsenter alone, our plugin's VERSION (the static
 * C binary, no agent call), the reference plugins' VERSION, and the agent's own time
 * (the same ADD/DEL request sent to its socket from this process, no plugin process).
 * `--before <other build>/dist/agent/main.js` runs that agent too, on a second node of the same
 * cluster, interleaved with the others: before/after figures measured side by side in one run.
 *
 *   npx tsc -p . && make -s -C bpf && make -s -C cni && node dist/bench/cni.js [--pairs 50] [--warmup 3]
 *     [--before /path/to/other/dist/agent/main.js]
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { cniPluginBinary } from "../lib/cni-plugin.js";
import { runSync } from "../lib/exec.js";
import { AgentTestCluster, type TestNode, type TestPod } from "../testing/agent-cluster.js";
import { KernelFloor } from "./cni-kernel-floor.js";

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const PAIRS = option("pairs", 50);
const BEFORE_AGENT = (() => {
  const at = process.argv.indexOf("--before");
  if (at < 0) return undefined;
  const main = process.argv[at + 1];
  if (!main || !existsSync(main)) throw new Error(`--before: no agent main at "${main ?? ""}"`);
  return main;
})();
const WARMUP = option("warmup", 3);
const REFERENCE_BIN = "/usr/lib/cni";
if (process.getuid?.() !== 0) {
  console.error("cni bench: must run as root (network namespaces, BPF, cgroups)");
  process.exit(1);
}
for (const plugin of ["bridge", "host-local"])
  if (!existsSync(join(REFERENCE_BIN, plugin)))
    throw new Error(`${REFERENCE_BIN}/${plugin} missing: apt-get install containernetworking-plugins`);

const id = randomBytes(2).toString("hex");
const REF_NODE = `bc${id}n`;
const REF_BRIDGE = `bc${id}br`;
const dir = mkdtempSync(join(tmpdir(), `bc${id}-`));
const binDir = join(dir, "bin");
const refNamespaces = new Set<string>();
const children = new Set<number>();
const cluster = new AgentTestCluster();
const floor = new KernelFloor(`bc${id}`);

interface Invocation {
  ms: number;
  code: number;
  stdout: string;
}

/** Runs argv (wrapped into a netns by nsenter) with env + stdin, timed from spawn to exit. */
function invoke(netns: string, argv: string[], env: NodeJS.ProcessEnv, stdin = ""): Promise<Invocation> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn("nsenter", [`--net=/run/netns/${netns}`, "--", ...argv], {
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    if (child.pid !== undefined) children.add(child.pid);
    let stdout = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.resume();
    child.on("error", reject);
    child.on("close", (code) => {
      const ms = Number(process.hrtime.bigint() - start) / 1e6;
      if (child.pid !== undefined) children.delete(child.pid);
      resolve({ ms, code: code ?? 1, stdout });
    });
    // a plugin may exit without reading stdin (VERSION, `true`): EPIPE is not an error here
    child.stdin.on("error", () => {});
    child.stdin.end(stdin);
  });
}

function runtimeEnv(command: string, containerId: string, podNetns: string, args = ""): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    CNI_COMMAND: command,
    CNI_CONTAINERID: containerId,
    CNI_NETNS: `/run/netns/${podNetns}`,
    CNI_IFNAME: "eth0",
    CNI_PATH: `${binDir}:${REFERENCE_BIN}`,
    CNI_ARGS: args,
  };
}

function must(what: string, result: Invocation): number {
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}): ${result.stdout.trim()}`);
  return result.ms;
}

// ---------------------------------------------------------------------------- ours ----

let node: TestNode;
/** The node running the --before agent. */
let beforeNode: TestNode | undefined;
const OUR_PLUGIN = join(binDir, "clustermesh");

function ourConfig(node: TestNode): string {
  return JSON.stringify({
    cniVersion: "1.1.0",
    name: "clustermesh",
    type: "clustermesh",
    agentSocket: node.socket,
  });
}

async function ourPair(node: TestNode): Promise<{ add: number; del: number }> {
  const pod: TestPod = await cluster.createPod(node);
  try {
    const args = `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name};K8S_POD_UID=${pod.uid}`;
    const add = must(
      `our ADD ${pod.name}`,
      await invoke(
        node.netns,
        [OUR_PLUGIN],
        runtimeEnv("ADD", pod.containerId, pod.netns, args),
        ourConfig(node),
      ),
    );
    const del = must(
      `our DEL ${pod.name}`,
      await invoke(
        node.netns,
        [OUR_PLUGIN],
        runtimeEnv("DEL", pod.containerId, pod.netns, args),
        ourConfig(node),
      ),
    );
    return { add, del };
  } finally {
    await cluster.deletePodObject(pod);
    cluster.removeSandbox(pod);
  }
}

/** The agent's own time: the plugin's request sent to the socket from this (warm) process. */
async function agentOnlyPair(node: TestNode): Promise<{ add: number; del: number }> {
  const pod = await cluster.createPod(node);
  try {
    let start = process.hrtime.bigint();
    await cluster.cniDirect(node, "ADD", pod);
    const add = Number(process.hrtime.bigint() - start) / 1e6;
    start = process.hrtime.bigint();
    await cluster.cniDirect(node, "DEL", pod);
    const del = Number(process.hrtime.bigint() - start) / 1e6;
    return { add, del };
  } finally {
    await cluster.deletePodObject(pod);
    cluster.removeSandbox(pod);
  }
}

// ----------------------------------------------------------------------- reference ----

const refConfig = JSON.stringify({
  cniVersion: "1.0.0",
  name: "benchbridge",
  type: "bridge",
  bridge: REF_BRIDGE,
  isGateway: true,
  ipMasq: false,
  ipam: { type: "host-local", ranges: [[{ subnet: "10.250.0.0/24" }]], dataDir: join(dir, "host-local") },
});
let refCounter = 0;

async function referencePair(): Promise<{ add: number; del: number }> {
  const index = ++refCounter;
  const netns = `bc${id}p${index}`;
  const containerId = `r${id}${index.toString().padStart(4, "0")}${randomBytes(4).toString("hex")}`;
  runSync(["ip", "netns", "add", netns]);
  refNamespaces.add(netns);
  // the same CNI_ARGS a Kubernetes runtime passes to every plugin
  const args = `IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=ref${index};K8S_POD_UID=${randomBytes(8).toString("hex")}`;
  try {
    const bridge = join(REFERENCE_BIN, "bridge");
    const add = must(
      `reference ADD ${netns}`,
      await invoke(REF_NODE, [bridge], runtimeEnv("ADD", containerId, netns, args), refConfig),
    );
    const del = must(
      `reference DEL ${netns}`,
      await invoke(REF_NODE, [bridge], runtimeEnv("DEL", containerId, netns, args), refConfig),
    );
    return { add, del };
  } finally {
    runSync(["ip", "netns", "del", netns]);
    refNamespaces.delete(netns);
  }
}

// ------------------------------------------------------------------------ reporting ----

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function table(headers: string[], rows: string[][]): string {
  const all = [headers, ...rows];
  const widths = headers.map((_, column) => Math.max(...all.map((row) => row[column].length)));
  const line = (row: string[]) =>
    `| ${row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join(" | ")} |`;
  return [
    line(headers),
    `|${widths.map((width, column) => (column === 0 ? "-".repeat(width + 2) : `${"-".repeat(width + 1)}:`)).join("|")}|`,
    ...rows.map(line),
  ].join("\n");
}

const ms = (value: number) => value.toFixed(1);

// ---------------------------------------------------------------------- clean-up ----

let cleaned = false;
async function cleanup(): Promise<void> {
  if (cleaned) return;
  cleaned = true;
  const problems: string[] = [];
  for (const pid of children) {
    try {
      process.kill(pid, "SIGKILL");
    } catch (error) {
      // ESRCH: exited already; anything else is a cleanup problem to report
      if ((error as NodeJS.ErrnoException).code !== "ESRCH") problems.push(`kill ${pid}: ${error}`);
    }
  }
  for (const netns of [...refNamespaces, REF_NODE]) {
    try {
      if (existsSync(`/run/netns/${netns}`)) runSync(["ip", "netns", "del", netns]);
    } catch (error) {
      problems.push(`netns ${netns}: ${(error as Error).message}`);
    }
  }
  problems.push(...floor.cleanup());
  try {
    await cluster.stop();
  } catch (error) {
    problems.push((error as Error).message);
  }
  rmSync(dir, { recursive: true, force: true });
  if (problems.length > 0) console.error(`cni bench: clean-up problems:\n${problems.join("\n")}`);
}

// an error escaping an event handler must not skip the clean-up either
process.on("uncaughtException", (error) => {
  console.error(`cni bench: ${error.stack ?? error}`);
  void cleanup().finally(() => process.exit(1));
});
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    console.error(`cni bench: ${signal}, cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

// -------------------------------------------------------------------------- main ----

async function main(): Promise<void> {
  const loadAtStart = loadavg();
  mkdirSync(binDir);
  // the way the lab installs the plugin into a node's CNI bin dir
  copyFileSync(cniPluginBinary(), OUR_PLUGIN);
  chmodSync(OUR_PLUGIN, 0o755);

  await cluster.start(BEFORE_AGENT ? 2 : 1);
  [node, beforeNode] = cluster.nodes;
  await cluster.startAgent(node);
  if (beforeNode) await cluster.startAgent(beforeNode, { agentMain: BEFORE_AGENT });
  runSync(["ip", "netns", "add", REF_NODE]);
  runSync(["nsenter", `--net=/run/netns/${REF_NODE}`, "ip", "link", "set", "lo", "up"]);
  floor.setup();

  const samples = () => ({ add: [] as number[], del: [] as number[], pair: [] as number[] });
  const ours = samples();
  const reference = samples();
  const agentOnly = samples();
  type Cell = [ReturnType<typeof samples>, () => Promise<{ add: number; del: number }>];
  const cells: Cell[] = [
    [ours, () => ourPair(node)],
    [reference, referencePair],
    [agentOnly, () => agentOnlyPair(node)],
  ];
  const kernel = { tcx: samples(), clsact: samples(), plain: samples() };
  cells.push(
    [kernel.tcx, () => floor.pair("tcx")],
    [kernel.clsact, () => floor.pair("clsact")],
    [kernel.plain, () => floor.pair("none")],
  );
  const before = beforeNode ? { ours: samples(), agentOnly: samples() } : undefined;
  if (before && beforeNode) {
    const other = beforeNode;
    cells.splice(1, 0, [before.ours, () => ourPair(other)]);
    cells.push([before.agentOnly, () => agentOnlyPair(other)]);
  }
  for (let i = 0; i < WARMUP; i++) for (const [, run] of cells) await run();
  const startup = {
    nsenter: [] as number[],
    ours: [] as number[],
    bridge: [] as number[],
    hostLocal: [] as number[],
  };
  const version = (plugin: string) =>
    invoke(REF_NODE, [plugin], { PATH: process.env.PATH, CNI_COMMAND: "VERSION" }, "");
  const started = Date.now();
  for (let i = 0; i < PAIRS; i++) {
    for (const [target, run] of cells) {
      const { add, del } = await run();
      target.add.push(add);
      target.del.push(del);
      target.pair.push(add + del);
    }
    // the start-up probes in a rotating order (the first after a pod's teardown pays for it)
    const probes: Array<[number[], () => Promise<Invocation>, string]> = [
      [startup.nsenter, () => invoke(REF_NODE, ["true"], { PATH: process.env.PATH }), "nsenter true"],
      [startup.ours, () => version(OUR_PLUGIN), "our VERSION"],
      [startup.bridge, () => version(join(REFERENCE_BIN, "bridge")), "bridge VERSION"],
      [startup.hostLocal, () => version(join(REFERENCE_BIN, "host-local")), "host-local VERSION"],
    ];
    for (let k = 0; k < probes.length; k++) {
      const [samples, probe, what] = probes[(i + k) % probes.length];
      samples.push(must(what, await probe()));
    }
  }
  const elapsed = (Date.now() - started) / 1000;

  console.log(
    `cni bench: ${PAIRS} ADD+DEL pairs per plugin${before ? " and agent build" : ""} (interleaved, after ${WARMUP} warm-up pairs), new netns per pod, ` +
      `plugin exec'd from the node netns with env + stdin like a runtime; ${elapsed.toFixed(0)} s; ` +
      `load average at start ${loadAtStart.map((v) => v.toFixed(2)).join(" ")}`,
  );
  const rows: string[][] = [];
  for (const op of ["add", "del", "pair"] as const) {
    const label = { add: "ADD", del: "DEL", pair: "ADD+DEL" }[op];
    const base50 = percentile(reference[op], 50);
    const base99 = percentile(reference[op], 99);
    const named: Array<[string, number[]]> = [
      ["reference bridge + host-local", reference[op]],
      ["clustermesh plugin → agent", ours[op]],
      ["  of which the agent (socket, no plugin exec)", agentOnly[op]],
    ];
    if (before)
      named.push(
        ["clustermesh plugin → agent, --before build", before.ours[op]],
        ["  of which the agent, --before build", before.agentOnly[op]],
      );
    named.push(
      ["kernel only: veth + routes + 2 clsact filters (no agent)", kernel.clsact[op]],
      ["kernel only: the same with 2 tcx links instead", kernel.tcx[op]],
      ["kernel only: veth + routes, no program", kernel.plain[op]],
    );
    for (const [name, samples] of named) {
      const p50 = percentile(samples, 50);
      const p99 = percentile(samples, 99);
      rows.push([name, label, ms(p50), (p50 / base50).toFixed(2), ms(p99), (p99 / base99).toFixed(2)]);
    }
  }
  console.log("");
  console.log(table(["plugin", "op", "p50 ms", "× ref p50", "p99 ms", "× ref p99"], rows));
  const ourPairP50 = percentile(ours.pair, 50);
  const refPairP50 = percentile(reference.pair, 50);
  const agentPairP50 = percentile(agentOnly.pair, 50);
  const versionP50 = percentile(startup.ours, 50);
  console.log(
    `\nConclusion: ADD+DEL p50 ${ms(ourPairP50)} ms for ours vs ${ms(refPairP50)} ms for bridge + host-local ` +
      `(${(ourPairP50 / refPairP50).toFixed(1)}×): ${ms(agentPairP50)} ms is the agent's work (p50 of the socket-only ` +
      `pairs), ≈ ${ms(2 * versionP50)} ms two plugin start-ups (2 × VERSION p50), ` +
      `${ms(ourPairP50 - agentPairP50 - 2 * versionP50)} ms the remainder (socket round trip, scheduling, noise).`,
  );
  const floorP50 = percentile(kernel.clsact.pair, 50);
  console.log(
    `Kernel floor: the same links, routes and two clsact filters made and removed from this process with no agent ` +
      `take ADD+DEL p50 ${ms(floorP50)} ms (${(floorP50 / refPairP50).toFixed(2)}× the reference; ` +
      `${ms(percentile(kernel.tcx.pair, 50))} ms with tcx links instead (--endpoint-attach tcx), ` +
      `${ms(percentile(kernel.plain.pair, 50))} ms with no program): the agent adds ` +
      `${ms(agentPairP50 - floorP50)} ms to it, the plugin path ${ms(ourPairP50 - agentPairP50)} ms more.`,
  );
  if (before) {
    const beforePairP50 = percentile(before.ours.pair, 50);
    console.log(
      `Before/after: ADD+DEL p50 ${ms(beforePairP50)} ms (${(beforePairP50 / refPairP50).toFixed(2)}× the reference) ` +
        `with the --before agent, ${ms(ourPairP50)} ms (${(ourPairP50 / refPairP50).toFixed(2)}×) with this build; ` +
        `the agents' own share ${ms(percentile(before.agentOnly.pair, 50))} ms → ${ms(agentPairP50)} ms.`,
    );
  }

  console.log("");
  const startupRows: Array<[string, number[]]> = [
    ["nsenter --net … true (included in every figure)", startup.nsenter],
    ["clustermesh plugin VERSION (static C binary)", startup.ours],
    ["reference bridge VERSION (Go binary)", startup.bridge],
    ["reference host-local VERSION (Go binary)", startup.hostLocal],
  ];
  const bridgeP50 = percentile(startup.bridge, 50);
  console.log(
    table(
      ["start-up (exec → exit, from the node netns)", "p50 ms", "× bridge", "p99 ms"],
      startupRows.map(([name, samples]) => [
        name,
        ms(percentile(samples, 50)),
        (percentile(samples, 50) / bridgeP50).toFixed(2),
        ms(percentile(samples, 99)),
      ]),
    ),
  );
  console.log(
    `\nConclusion: our plugin (static C) starts in ${ms(versionP50)} ms p50; a Go plugin (bridge) in ${ms(bridgeP50)} ms.`,
  );
  console.log(
    `\nload average: ${loadAtStart.map((v) => v.toFixed(2)).join(" ")} at start, ${loadavg()
      .map((v) => v.toFixed(2))
      .join(
        " ",
      )} at the end (2 shared cores: only the side-by-side ratios mean something); p99 of ${PAIRS} samples ≈ the maximum`,
  );
}

try {
  await main();
} catch (error) {
  console.error(`cni bench failed: ${(error as Error).stack ?? error}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
