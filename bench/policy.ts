/**
 * Network policy benchmark (root), issue 16: the per-packet cost of from-pod (egress policy) and
 * to-pod (ingress policy) with no policy vs 1, 1k and 10k rules and with 10k remote identities,
 * side by side in one run (BPF_PROG_TEST_RUN; cases interleaved per round, medians of the rounds).
 * Per case and hook:
 *   established — a packet of an allowed connection (policy conntrack hit; what almost every packet is);
 *   new         — the first packet of an allowed connection: every probe, plus two conntrack inserts
 *                 (single runs, the connection forgotten before each, median);
 *   denied      — a packet no rule admits: every probe the endpoint's levels allow, a drop counted.
 * "rules" are allow entries, one peer identity each, spread over the key levels (exact port, port range,
 * any port of the protocol, any protocol) so that every probe level is in use; the measured peer is
 * the last one written. The identities case also puts 10k remote pods into the ipcache.
 * Also: time to apply a policy change to 100 endpoints, and to absorb 10k remote identities.
 *
 *   npx tsc -p . && make -s -C bpf && node dist/bench/policy.js [--rounds 7] [--repeat 50000] [--samples 500]
 */

import { reconcileMaps } from "../bpf/datapath/apply.js";
import { Proto } from "../bpf/datapath/codecs.js";
import { Datapath, ProgramName } from "../bpf/datapath/loader.js";
import { buildPacket, identityMarkContext } from "../bpf/datapath/packet.js";
import {
  diffPolicyEntries,
  flattenEndpointPolicy,
  type PolicyMapEntries,
} from "../bpf/datapath/policy-entries.js";
import { PolicyMaps } from "../bpf/datapath/policy-maps.js";
import type {
  DesiredDatapathState,
  DesiredEndpoint,
  DesiredIpcacheEntry,
} from "../bpf/datapath/reconcile.js";
import { mountPrivateBpffs } from "../bpf/testing.js";
import type { PolicyKey, PolicyRuleRef, PolicyValue } from "../lib/policy/types.js";

function argument(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const ROUNDS = argument("rounds", 7);
const REPEAT = argument("repeat", 50_000);
const SAMPLES = argument("samples", 500);
const TC_ACT_SHOT = 2;

const CLIENT = "10.1.0.10"; // egress policy under test
const SERVER = "10.1.0.20"; // ingress policy under test
const REMOTE_NODE = "172.20.0.2";
const PEER_BASE = 0x02_0000 + 256; // cluster 2's identities
const rule: PolicyRuleRef = {
  kind: "CiliumNetworkPolicy",
  namespace: "bench",
  name: "allow",
  direction: "ingress",
  index: 0,
};

const remotePod = (index: number) => `10.2.${(index >> 8) & 0xff}.${index & 0xff}`;

interface Case {
  name: string;
  rules: number;
  remoteIdentities: number;
}

const CASES: Case[] = [
  { name: "no policy", rules: 0, remoteIdentities: 0 },
  { name: "1 rule", rules: 1, remoteIdentities: 0 },
  { name: "1k rules", rules: 1_000, remoteIdentities: 0 },
  { name: "10k rules", rules: 10_000, remoteIdentities: 0 },
  { name: "no policy, 10k remote identities", rules: 0, remoteIdentities: 10_000 },
  { name: "10k rules, 10k remote identities", rules: 10_000, remoteIdentities: 10_000 },
];

/** Rule i admits peer PEER_BASE+i; the levels rotate so that every probe level has entries. */
function entriesFor(direction: "ingress" | "egress", count: number): Array<[PolicyKey, PolicyValue]> {
  return Array.from({ length: count }, (_, index): [PolicyKey, PolicyValue] => {
    const identity = PEER_BASE + index;
    const last = index === count - 1;
    const shape = last ? 0 : index % 4;
    const ports =
      shape === 0
        ? { protocol: Proto.TCP, port: 80, endPort: 80 }
        : shape === 1
          ? { protocol: Proto.TCP, port: 1000, endPort: 2000 } // 26 keys
          : shape === 2
            ? { protocol: Proto.UDP, port: 0, endPort: 0 }
            : { protocol: 0, port: 0, endPort: 0 };
    return [
      { direction, identity, ...ports },
      { verdict: "allow", rule: { ...rule, direction } },
    ];
  });
}

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

const ruleNumber = () => 1;

class Bench {
  private readonly written = new Map<number, PolicyMapEntries>();
  constructor(
    readonly datapath: Datapath,
    readonly policy: PolicyMaps,
  ) {}

  /** Programs endpoints, ipcache and both policies for one case (as the agent would, incrementally). */
  setup(c: Case): void {
    const flags = new Map<string, number>();
    for (const [address, policyId, direction] of [
      [SERVER, 1, "ingress"],
      [CLIENT, 2, "egress"],
    ] as const) {
      const enforced = {
        ingress: direction === "ingress" && c.rules > 0,
        egress: direction === "egress" && c.rules > 0,
      };
      const flat = flattenEndpointPolicy(
        { enforced, entries: entriesFor(direction, c.rules) },
        { policyId, ruleNumber },
      );
      const { upserts, deletes } = diffPolicyEntries(this.written.get(policyId) ?? new Map(), flat.entries);
      this.policy.write(upserts, deletes);
      this.written.set(policyId, flat.entries);
      flags.set(address, flat.flags);
    }
    const endpoints: DesiredEndpoint[] = [
      {
        address: SERVER,
        ifindex: 12,
        identity: 0x01_0200,
        mac: "02:aa:00:00:00:20",
        nodeMac: "02:bb:00:00:00:20",
      },
      {
        address: CLIENT,
        ifindex: 11,
        identity: 0x01_0100,
        mac: "02:aa:00:00:00:10",
        nodeMac: "02:bb:00:00:00:10",
      },
    ].map((endpoint) => ({ ...endpoint, policyFlags: flags.get(endpoint.address) }));
    // the measured remote peer is the last rule's identity; the rest are other remote pods
    const peer = PEER_BASE + Math.max(c.rules - 1, 0);
    const ipcache: DesiredIpcacheEntry[] = [
      { prefix: `${remotePod(0)}/32`, identity: peer, tunnelEndpoint: REMOTE_NODE },
    ];
    for (let index = 1; index < c.remoteIdentities; index++)
      ipcache.push({
        prefix: `${remotePod(index)}/32`,
        identity: PEER_BASE + 20_000 + index,
        tunnelEndpoint: REMOTE_NODE,
      });
    const state: DesiredDatapathState = {
      services: [],
      endpoints,
      remoteNodes: [
        { nodeIp: REMOTE_NODE, podCidrs: ["10.2.0.0/16"], nodeIdentity: 6, podCidrIdentity: 2, clusterId: 2 },
      ],
      ipcache,
    };
    reconcileMaps(this.datapath.maps, state);
  }

  peerOf(c: Case): number {
    return PEER_BASE + Math.max(c.rules - 1, 0);
  }

  /** The same syscalls as forgetConnections on a key that is not there. */
  forgetOther(): void {
    this.policy.conntrack.delete({
      saddr: "192.0.2.1",
      daddr: "192.0.2.2",
      sport: 1,
      dport: 1,
      proto: 6,
      direction: 0,
    });
  }

  forgetConnections(): void {
    for (const key of [...this.policy.conntrack.keys()]) this.policy.conntrack.delete(key);
  }

  /** ns per packet for one hook: [established, new, denied]. */
  measure(hook: "from-pod" | "to-pod", c: Case): [number, number, number, number] {
    const peer = this.peerOf(c);
    const program = this.datapath.program(hook === "from-pod" ? ProgramName.fromPod : ProgramName.toPod);
    const packet = (dport: number) =>
      hook === "from-pod"
        ? buildPacket({ saddr: CLIENT, daddr: remotePod(0), proto: Proto.TCP, sport: 40000, dport })
        : buildPacket({ saddr: remotePod(0), daddr: SERVER, proto: Proto.TCP, sport: 40000, dport });
    const context = hook === "to-pod" ? identityMarkContext(peer) : undefined;
    const allowed = packet(80);
    const denied = packet(81);
    const run = (data: Buffer, repeat = 1) => program.testRun({ data, repeat, context });

    this.forgetConnections();
    run(allowed);
    const established = run(allowed, REPEAT).durationNs;
    const fresh: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      this.forgetConnections();
      fresh.push(run(allowed).durationNs);
    }
    const drop = run(denied, REPEAT);
    if (c.rules > 0 && drop.returnValue !== TC_ACT_SHOT)
      throw new Error(`${c.name}: the denied packet passed`);
    // single runs of the established packet, with the same syscall in between as for "new"
    const single: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      this.forgetOther();
      single.push(run(allowed).durationNs);
    }
    return [established, median(fresh), drop.durationNs, median(single)];
  }
}

function applyTimes(bench: Bench, policy: PolicyMaps): Array<Array<string | number>> {
  const rows: Array<Array<string | number>> = [];
  // a change to a policy selecting 100 endpoints: each gets one more peer (an incremental diff each)
  const endpoints = 100;
  const base = entriesFor("ingress", 100);
  const previous = new Map<number, PolicyMapEntries>();
  for (let id = 100; id < 100 + endpoints; id++) {
    const flat = flattenEndpointPolicy(
      { enforced: { ingress: true, egress: false }, entries: base },
      { policyId: id, ruleNumber },
    );
    policy.write([...flat.entries.values()], []);
    previous.set(id, flat.entries);
  }
  const changed = [...base, ...entriesFor("ingress", 101).slice(100)];
  let start = process.hrtime.bigint();
  let writes = 0;
  for (let id = 100; id < 100 + endpoints; id++) {
    const flat = flattenEndpointPolicy(
      { enforced: { ingress: true, egress: false }, entries: changed },
      { policyId: id, ruleNumber },
    );
    const diff = diffPolicyEntries(previous.get(id) as PolicyMapEntries, flat.entries);
    policy.write(diff.upserts, diff.deletes);
    writes += diff.upserts.length + diff.deletes.length;
    previous.set(id, flat.entries);
  }
  rows.push([
    "policy change (+1 peer) on 100 endpoints of 100 entries",
    writes,
    (Number(process.hrtime.bigint() - start) / 1e6).toFixed(1),
  ]);

  // 10k remote identities that one endpoint's selector matches arrive: its entries grow by 10k
  const grown = [...changed, ...entriesFor("ingress", 10_101).slice(101)];
  start = process.hrtime.bigint();
  const flat = flattenEndpointPolicy(
    { enforced: { ingress: true, egress: false }, entries: grown },
    { policyId: 100, ruleNumber },
  );
  const diff = diffPolicyEntries(previous.get(100) as PolicyMapEntries, flat.entries);
  policy.write(diff.upserts, diff.deletes);
  rows.push([
    "10k remote identities matched by 1 endpoint",
    diff.upserts.length + diff.deletes.length,
    (Number(process.hrtime.bigint() - start) / 1e6).toFixed(1),
  ]);
  for (const entries of previous.values())
    policy.write(
      [],
      [...entries.values()].map(([key]) => key),
    );
  policy.write(
    [],
    [...flat.entries.values()].map(([key]) => key),
  );
  void bench;
  return rows;
}

function main(): void {
  const bpffs = mountPrivateBpffs("cm-bench-policy-");
  let datapath: Datapath | undefined;
  let policy: PolicyMaps | undefined;
  try {
    datapath = Datapath.load({ pinRoot: `${bpffs.path}/node` });
    datapath.maps.setConfig({ tunnelIfindex: 77, flags: 0, worldIdentity: 2 });
    policy = PolicyMaps.open(`${bpffs.path}/node`);
    const bench = new Bench(datapath, policy);
    const results = new Map<string, number[][]>(); // case/hook → rounds × [established, new, denied]
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 ? [...CASES].reverse() : CASES;
      for (const c of order) {
        bench.setup(c);
        for (const hook of ["from-pod", "to-pod"] as const) {
          const key = `${c.name}|${hook}`;
          const list = results.get(key) ?? [];
          list.push(bench.measure(hook, c));
          results.set(key, list);
        }
      }
    }
    const medianOf = (key: string, column: number) =>
      median((results.get(key) ?? []).map((row) => row[column]));
    const rows: Array<Array<string | number>> = [];
    for (const hook of ["from-pod", "to-pod"] as const) {
      for (const c of CASES) {
        // the baseline: no policy with the same ipcache (10k remote pods make its LPM lookups dearer)
        const baseline = CASES.find(
          (other) => other.rules === 0 && other.remoteIdentities === c.remoteIdentities,
        ) as Case;
        const baseEstablished = medianOf(`${baseline.name}|${hook}`, 0);
        const baseNew = medianOf(`${baseline.name}|${hook}`, 1);
        const key = `${c.name}|${hook}`;
        const established = medianOf(key, 0);
        const fresh = medianOf(key, 1);
        const denied = medianOf(key, 2);
        const delta = (value: number, base: number) =>
          c.rules === 0 ? "—" : `${value - base >= 0 ? "+" : ""}${value - base}`;
        rows.push([
          hook,
          c.name,
          established,
          delta(established, baseEstablished),
          medianOf(key, 3),
          fresh,
          delta(fresh, baseNew),
          c.rules ? denied : "—",
        ]);
      }
    }
    console.log(
      `Per-packet cost with network policy (BPF_PROG_TEST_RUN; medians of ${ROUNDS} interleaved rounds;`,
    );
    console.log(
      `established: repeat ${REPEAT}; new: median of ${SAMPLES} single runs, connection forgotten before each)`,
    );
    console.log(
      table(
        [
          "hook",
          "case",
          "established ns",
          "Δ ns",
          "established single ns",
          "new conn ns",
          "Δ ns",
          "denied ns",
        ],
        rows,
      ),
    );
    console.log();
    bench.setup(CASES[0]); // empties the measured endpoints' policies
    console.log("Applying policy (flatten + diff + batched writes)");
    console.log(table(["change", "map writes", "ms"], applyTimes(bench, policy)));
  } finally {
    policy?.close();
    datapath?.close();
    bpffs.cleanup();
  }
}

main();
