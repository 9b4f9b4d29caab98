/**
 * Flow events benchmark (root), issue 17 item 1: the per-packet cost of from-pod with flows off vs
 * on, side by side (BPF_PROG_TEST_RUN, rounds interleaved, order alternating), and what a reader that
 * falls behind costs: events lost and counted, packets never.
 *   - "on" (the default, Cilium's "medium" aggregation, bpf/include/dp_flow_agg.h): a run repeats
 *     one packet, so after the first only a drop is reported; the rows show what aggregated
 *     packets cost (the table lookup for SYN/FIN/RST and non-TCP, nothing for an established
 *     segment) and what a drop costs (always an event).
 *   - "all" (--hubble-flows all): every packet writes a full event: the cost of a reported packet.
 *   A reader drains the ring after every batch of BATCH packets (below the ring's capacity).
 *   - "behind": one run of far more packets than the ring holds, every packet reported, nobody
 *     reading: the first ~40k events fill the ring, the rest take the lost path (a per-CPU counter).
 * Cases: "tunnel" = a packet to a remote cluster's pod (ipcache → VXLAN redirect), "service hit" =
 * an established flow to a VIP (conntrack hit, DNAT), "drop" = a VIP with no backend, "UDP" = a
 * datagram to the remote pod.
 *
 *   npx tsc -p . && make -s -C bpf && node dist/bench/flows.js [--rounds 15] [--batch 20000]
 */
import { reconcileMaps } from "../bpf/datapath/apply.js";
import { Proto } from "../bpf/datapath/codecs.js";
import { Datapath, ProgramName } from "../bpf/datapath/loader.js";
import { buildPacket, TcpFlag } from "../bpf/datapath/packet.js";
import { type FlowReporting, FlowSource } from "../bpf/flows/source.js";
import { mountPrivateBpffs } from "../bpf/testing.js";

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const ROUNDS = argument("rounds", 15);
const BATCH = argument("batch", 20_000);
const BEHIND = argument("behind", 400_000);
const CLIENT = "10.1.0.10";
const VIP = "10.96.0.10";
const DEAD_VIP = "10.96.0.11";
const REMOTE_POD = "10.2.0.10";

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
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

function main(): void {
  const bpffs = mountPrivateBpffs("cm-bench-flows-");
  let datapath: Datapath | undefined;
  let source: FlowSource | undefined;
  try {
    datapath = Datapath.load({ pinRoot: `${bpffs.path}/node` });
    datapath.maps.setConfig({ tunnelIfindex: 77, flags: 0, worldIdentity: 2 });
    let received = 0;
    source = FlowSource.open(`${bpffs.path}/node`, { onEvent: () => received++ });
    reconcileMaps(datapath.maps, {
      services: [
        // the VIP's backend is the VIP itself, so repeated runs of the same packet stay conntrack hits
        { frontend: { address: VIP, port: 80, proto: Proto.TCP }, backends: [{ address: VIP, port: 80 }] },
        { frontend: { address: DEAD_VIP, port: 80, proto: Proto.TCP }, backends: [] },
      ],
      endpoints: [
        {
          address: CLIENT,
          ifindex: 11,
          identity: 4242,
          mac: "02:aa:00:00:00:10",
          nodeMac: "02:bb:00:00:00:10",
        },
      ],
      remoteNodes: [
        {
          nodeIp: "172.20.0.2",
          podCidrs: ["10.2.0.0/24"],
          nodeIdentity: 6,
          podCidrIdentity: 2,
          remoteCluster: true,
        },
      ],
      ipcache: [
        { prefix: `${REMOTE_POD}/32`, identity: 0x20001, tunnelEndpoint: "172.20.0.2", remoteCluster: true },
      ],
    });
    const program = datapath.program(ProgramName.fromPod);
    const packet = (daddr: string, tcpFlags: number = TcpFlag.SYN, proto: number = Proto.TCP) =>
      buildPacket({ saddr: CLIENT, daddr, proto, sport: 40000, dport: 80, tcpFlags });
    const cases: ReadonlyArray<readonly [string, Buffer, FlowReporting]> = [
      ["on: tunnel, SYN retransmit (aggregated)", packet(REMOTE_POD), "on"],
      ["on: tunnel, established (ACK)", packet(REMOTE_POD, TcpFlag.ACK), "on"],
      ["on: tunnel, UDP stream (aggregated)", packet(REMOTE_POD, 0, Proto.UDP), "on"],
      ["on: service hit (DNAT), SYN (aggregated)", packet(VIP), "on"],
      ["on: drop (no backend): always an event", packet(DEAD_VIP), "on"],
      ["all: tunnel, SYN: every packet an event", packet(REMOTE_POD), "all"],
      ["all: service hit (DNAT), SYN", packet(VIP), "all"],
      ["all: tunnel, established (ACK)", packet(REMOTE_POD, TcpFlag.ACK), "all"],
    ];
    program.testRun({ data: packet(VIP) }); // establish the service flow

    const flowSource = source;
    const measure = (data: Buffer, reporting: FlowReporting): number => {
      flowSource.setReporting(reporting);
      const ns = program.testRun({ data, repeat: BATCH }).durationNs;
      flowSource.drain();
      return ns;
    };
    const rows: Array<Array<string | number>> = [];
    for (const [name, data, reporting] of cases) {
      const off: number[] = [];
      const on: number[] = [];
      const ratios: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // alternate which goes first, so drift in the machine's load hits both alike
        const first = round % 2 === 0;
        const a = measure(data, first ? "off" : reporting);
        const b = measure(data, first ? reporting : "off");
        const [offNs, onNs] = first ? [a, b] : [b, a];
        off.push(offNs);
        on.push(onNs);
        ratios.push(onNs / offNs);
      }
      rows.push([
        name,
        median(off),
        median(on),
        `${((median(ratios) - 1) * 100).toFixed(1)}%`,
        `${((Math.min(...ratios) - 1) * 100).toFixed(1)}…${((Math.max(...ratios) - 1) * 100).toFixed(1)}%`,
      ]);
    }
    const lostBeforeOn = source.lostEvents();

    console.log(
      `from-pod per-packet cost, flows off vs on/all (BPF_PROG_TEST_RUN, ${BATCH / 1000}k packets per run, ` +
        `${ROUNDS} interleaved rounds, ring drained after each run)`,
    );
    console.log(table(["reporting: case", "off ns", "on ns", "on/off − 1 (median)", "range"], rows));
    if (source.lostEvents() !== lostBeforeOn) throw new Error("events were lost while the reader kept up");

    // a reader that falls behind: one long run, every packet reported, nobody draining
    source.setReporting("all");
    received = 0;
    const lostBefore = source.lostEvents();
    const forwardedBefore = datapath.maps.readMetrics().ForwardTunnel.packets;
    const dropsBefore = datapath.maps.readMetrics();
    const behind = program.testRun({ data: packet(REMOTE_POD), repeat: BEHIND });
    const lost = source.lostEvents() - lostBefore;
    const metrics = datapath.maps.readMetrics();
    const forwarded = metrics.ForwardTunnel.packets - forwardedBefore;
    const packetDrops = Object.entries(metrics)
      .filter(([name]) => name.startsWith("Drop"))
      .reduce(
        (sum, [name, value]) => sum + value.packets - dropsBefore[name as keyof typeof metrics].packets,
        0n,
      );
    source.drain();
    console.log();
    console.log(
      `A reader that falls behind: ${BEHIND.toLocaleString("en-US")} packets in one run, ring not read meanwhile`,
    );
    console.log(
      table(
        ["packets", "forwarded", "packet drops", "events delivered", "events lost (counted)", "ns/packet"],
        [[BEHIND, Number(forwarded), Number(packetDrops), received, Number(lost), behind.durationNs]],
      ),
    );
    if (forwarded !== BigInt(BEHIND) || packetDrops !== 0n) throw new Error("a full ring cost packets");
    if (BigInt(received) + lost !== BigInt(BEHIND)) throw new Error("events neither delivered nor counted");
  } finally {
    source?.close();
    datapath?.close();
    bpffs.cleanup();
  }
}

main();
