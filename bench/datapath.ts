/**
 * Datapath benchmark (root): map update throughput through libbpf-ts (single vs batch), and the
 * per-packet cost of from-pod for a service hit vs a miss at 1, 1k and 10k services, measured by
 * the kernel with BPF_PROG_TEST_RUN. Both must stay flat as the service count grows (O(1) lookups).
 *
 *   npx tsc -p . && make -s -C bpf && node dist/bench/datapath.js [--entries 100000] [--samples 2000]
 */
import { applyOps, readCurrentState } from "../bpf/datapath/apply.js";
import {
  Proto,
  type ServiceKey,
  type ServiceValue,
  serviceKeyCodec,
  serviceValueCodec,
} from "../bpf/datapath/codecs.js";
import { Datapath, ProgramName } from "../bpf/datapath/loader.js";
import { buildPacket } from "../bpf/datapath/packet.js";
import { type DesiredService, reconcileDatapath } from "../bpf/datapath/reconcile.js";
import { BpfMap, bytesCodec, encodeToBuffer } from "../bpf/libbpf-ts/index.js";
import { mountPrivateBpffs } from "../bpf/testing.js";

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const ENTRIES = argument("entries", 100_000);
const SAMPLES = argument("samples", 2_000);
const REPEAT = 100_000;
const CLIENT = "10.1.0.10";

function vipOf(index: number): string {
  return `10.96.${(index >> 8) & 0xff}.${index & 0xff}`;
}

function seconds(start: bigint): number {
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function table(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column].length)));
  const line = (row: string[]) =>
    `| ${row.map((cell, column) => cell.padStart(widths[column])).join(" | ")} |`;
  return [
    line(cells[0]),
    `|${widths.map((width) => "-".repeat(width + 2)).join("|")}|`,
    ...cells.slice(1).map(line),
  ].join("\n");
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function benchMapUpdates(datapath: Datapath): Array<Array<string | number>> {
  const services = datapath.maps.services;
  const entries: Array<[ServiceKey, ServiceValue]> = Array.from({ length: ENTRIES }, (_, index) => [
    { address: vipOf(index >> 2), port: 80 + (index & 3), proto: Proto.TCP, backendSlot: 1 },
    { backendId: index + 1, count: 0, revNatIndex: 1 },
  ]);
  const rows: Array<Array<string | number>> = [];
  const record = (operation: string, count: number, elapsed: number) =>
    rows.push([
      operation,
      count,
      Math.round(count / elapsed).toLocaleString("en-US"),
      (elapsed * 1e3).toFixed(1),
    ]);

  let start = process.hrtime.bigint();
  for (const [key, value] of entries) services.set(key, value);
  record("set (one syscall each)", ENTRIES, seconds(start));

  start = process.hrtime.bigint();
  let count = 0;
  for (const [key] of entries) if (services.get(key)) count++;
  record("get (one syscall each)", count, seconds(start));

  start = process.hrtime.bigint();
  for (const [key] of entries) services.delete(key);
  record("delete (one syscall each)", ENTRIES, seconds(start));

  // the same map through a raw-bytes view: the FFI + syscall floor, without codec work
  const raw = new BpfMap(
    services.fd,
    bytesCodec(serviceKeyCodec.size),
    bytesCodec(serviceValueCodec.size),
    false,
  );
  const encoded = entries.map(([key, value]) => [
    encodeToBuffer(serviceKeyCodec, key),
    encodeToBuffer(serviceValueCodec, value),
  ]);
  start = process.hrtime.bigint();
  for (const [key, value] of encoded) raw.set(key, value);
  record("set, pre-encoded bytes", ENTRIES, seconds(start));
  start = process.hrtime.bigint();
  for (const [key] of encoded) raw.delete(key);
  record("delete, pre-encoded bytes", ENTRIES, seconds(start));

  start = process.hrtime.bigint();
  count = services.updateBatch(entries);
  record("updateBatch (one syscall)", count, seconds(start));

  start = process.hrtime.bigint();
  count = services.deleteBatch(entries.map(([key]) => key));
  record("deleteBatch (one syscall)", count, seconds(start));
  return rows;
}

/**
 * Every service gets one backend. The service under test points at its own VIP:port ("loopback"
 * backend) so a repeated test-run keeps hitting it: test-run's repeat reuses the skb the previous
 * run rewrote, and a normal backend address would turn every run after the first into a miss.
 * The rewrite then stores identical values (same cost, the port checksum update is skipped).
 */
function servicesFor(count: number, loopbackIndex: number): DesiredService[] {
  return Array.from({ length: count }, (_, index) => ({
    frontend: { address: vipOf(index), port: 80, proto: Proto.TCP },
    backends: [
      index === loopbackIndex
        ? { address: vipOf(index), port: 80 }
        : { address: `10.3.${(index >> 8) & 0xff}.${index & 0xff}`, port: 8080 },
    ],
  }));
}

function benchPerPacket(datapath: Datapath): Array<Array<string | number>> {
  const program = datapath.program(ProgramName.fromPod);
  const rows: Array<Array<string | number>> = [];
  for (const serviceCount of [1, 1_000, 10_000]) {
    const setupStart = process.hrtime.bigint();
    // the last service: nothing about its position makes it cheaper than the others
    const target = serviceCount - 1;
    const ops = reconcileDatapath(
      { services: servicesFor(serviceCount, target), endpoints: [], remoteNodes: [], ipcache: [] },
      readCurrentState(datapath.maps),
    );
    applyOps(datapath.maps, ops);
    const setup = seconds(setupStart);
    const hit = buildPacket({
      saddr: CLIENT,
      daddr: vipOf(target),
      proto: Proto.TCP,
      sport: 40000,
      dport: 80,
    });
    const miss = buildPacket({
      saddr: CLIENT,
      daddr: "192.0.2.1",
      proto: Proto.TCP,
      sport: 40000,
      dport: 80,
    });
    program.testRun({ data: hit }); // establish the flow: hits below are conntrack hits
    const dnatBefore = datapath.maps.readMetrics().LbDnat.packets;
    const hitRepeated = program.testRun({ data: hit, repeat: REPEAT }).durationNs;
    if (datapath.maps.readMetrics().LbDnat.packets - dnatBefore !== BigInt(REPEAT)) {
      throw new Error("repeated hit runs did not all DNAT: the measurement would be of misses");
    }
    const missRepeated = program.testRun({ data: miss, repeat: REPEAT }).durationNs;
    // cross-check without repeat: many single runs, the kernel's timing of each (includes timer overhead)
    const hitSamples: number[] = [];
    const missSamples: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      hitSamples.push(program.testRun({ data: hit }).durationNs);
      missSamples.push(program.testRun({ data: miss }).durationNs);
    }
    rows.push([
      serviceCount.toLocaleString("en-US"),
      ops.length.toLocaleString("en-US"),
      (setup * 1e3).toFixed(0),
      hitRepeated,
      missRepeated,
      median(hitSamples),
      median(missSamples),
    ]);
  }
  return rows;
}

function main(): void {
  const bpffs = mountPrivateBpffs("cm-bench-");
  let datapath: Datapath | undefined;
  try {
    datapath = Datapath.load({ pinRoot: `${bpffs.path}/node` });
    console.log(
      `Map updates through libbpf-ts (cm_services, ${ENTRIES.toLocaleString("en-US")} entries, typed codecs)`,
    );
    console.log(table(["operation", "entries", "ops/s", "ms"], benchMapUpdates(datapath)));
    console.log();
    console.log(
      `from-pod per-packet cost (BPF_PROG_TEST_RUN; hit = established flow to a VIP, DNAT; miss = no service)`,
    );
    console.log(
      table(
        [
          "services",
          "map ops",
          "reconcile+apply ms",
          `hit ns (repeat ${REPEAT / 1000}k)`,
          `miss ns (repeat ${REPEAT / 1000}k)`,
          `hit ns (median ${SAMPLES} single)`,
          `miss ns (median ${SAMPLES} single)`,
        ],
        benchPerPacket(datapath),
      ),
    );
  } finally {
    datapath?.close();
    bpffs.cleanup();
  }
}

main();
