/**
 * Network policy benchmark (root), issue 16: the per-packet cost of from-pod (egress policy) and
 * to-pod (ingress policy) with no policy vs 1, 1k and 10k rules and with 10k remote identities,
 * side by side in one run (BPF_PROG_TEST_RUN; cases interleaved per round, medians of the rounds).
 * Per case and hook:
 *   established — a packet of an allowed connection (policy conntrack hit; what almost every packet is);
 *   new         — the first packet of an allowed connection: the probes and the conntrack insert
 *                 (single runs, median; before each the connection's entry is deleted by its key);
 *   established single — single runs of the established packet after one delete syscall of a key that
 *                 is not there: the same run-to-run overhead as "new", so the two compare directly;
 *   denied      — a packet no rule admits: every probe the endpoint's levels allow, a drop counted.
 * "rules" are allow entries, one peer identity each, spread over the key levels (exact port, port range,
 * any port of the protocol, any protocol) so that every probe level is in use; the measured peer is
 * the last one written. The identities case also puts 10k remote pods into the ipcache.
 * "both directions enforced": the endpoints enforce the reverse direction too, so that a connection
 * needs its conntrack entry (its replies would be refused); elsewhere the verdicts are cheap and
 * the replies pass, and connections get no entry (dp_policy.h).
 * Also: time to apply a policy change to 100 endpoints, and to absorb 10k remote identities; time
 * to make a narrowed policy apply to established connections (a conntrack scan vs a revision bump).
 *
 *   npx tsc -p . && make -s -C bpf && node dist/bench/policy.js [--rounds 7] [--repeat 50000] [--samples 500]
 *     [--objects <dir of *.bpf.o>]
 */

import { reconcileMaps } from "../bpf/datapath/apply.js";
import { type CtKey, Proto } from "../bpf/datapath/codecs.js";
import { Datapath, ProgramName } from "../bpf/datapath/loader.js";
import { buildPacket, identityMarkContext } from "../bpf/datapath/packet.js";
import type { PolicyCtEntry } from "../bpf/datapath/policy-codecs.js";
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

/** another build of the BPF objects (e.g. an ablation: a variant compiled with a part left out) */
const objectsAt = process.argv.indexOf("--objects");
const OBJECT_DIR = objectsAt >= 0 ? process.argv[objectsAt + 1] : undefined;
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
  /** the endpoints enforce the other direction too (with no rules there): connections need entries */
  both?: boolean;
}

const CASES: Case[] = [
  { name: "no policy", rules: 0, remoteIdentities: 0 },
  { name: "1 rule", rules: 1, remoteIdentities: 0 },
  { name: "1k rules", rules: 1_000, remoteIdentities: 0 },
  { name: "10k rules", rules: 10_000, remoteIdentities: 0 },
  { name: "no policy, 10k remote identities", rules: 0, remoteIdentities: 10_000 },
  { name: "10k rules, 10k remote identities", rules: 10_000, remoteIdentities: 10_000 },
  { name: "10k rules, both directions enforced", rules: 10_000, remoteIdentities: 0, both: true },
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
        ingress: (direction === "ingress" || c.both === true) && c.rules > 0,
        egress: (direction === "egress" || c.both === true) && c.rules > 0,
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

  /** One delete of a key that is not there: the syscall "new" makes, without its effect. */
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

  /** Every connection entry (a walk of the whole map: its buckets evict the caches, so only between cases). */
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
    // the measured connection's entries: "new" deletes exactly these before each run (one delete
    // syscall, as "established single" makes), not a walk of the map that would leave every cache cold
    const connection = [...this.policy.conntrack.keys()];
    const established = run(allowed, REPEAT).durationNs;
    // "new" and "established single" alternate sample by sample, so that drift (other processes,
    // the CPU's clock, what ran before) weighs on both alike: the first packet of the connection,
    // then, after one delete syscall of a key that is not there, a packet of it established
    const fresh: number[] = [];
    const single: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      if (connection.length === 0) this.forgetOther();
      for (const key of connection)
        if (!this.policy.conntrack.delete(key))
          throw new Error(`${c.name}/${hook}: the previous run did not record the connection`);
      fresh.push(run(allowed).durationNs);
      this.forgetOther();
      single.push(run(allowed).durationNs);
    }
    const drop = run(denied, REPEAT);
    if (c.rules > 0 && drop.returnValue !== TC_ACT_SHOT)
      throw new Error(`${c.name}: the denied packet passed`);
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

/**
 * A policy narrows for one endpoint while the node tracks 60k connections (600 of them the
 * endpoint's), side by side: what the agent did before, a scan of cm_policy_ct deleting the
 * endpoint's entries, and what it does now, a bump of the endpoint slot's revision (dp_policy.h).
 */
function narrowingTimes(policy: PolicyMaps): Array<Array<string | number>> {
  const connections = 60_000;
  const endpointAddress = "10.1.0.99";
  const rounds = 5;
  const fill = () => {
    const entries: Array<[CtKey, PolicyCtEntry]> = [];
    for (let index = 0; index < connections; index++) {
      const own = index % 100 === 0;
      entries.push([
        {
          saddr: own ? endpointAddress : `10.1.${(index >> 8) & 0xff}.${index & 0xff}`,
          daddr: remotePod(index % 10_000),
          sport: 1024 + index, // unique: 600 of the keys are the endpoint's
          dport: 80,
          proto: Proto.TCP,
          direction: 0,
        },
        { lastSeen: 0, revision: 0, egress: true },
      ]);
    }
    policy.conntrack.updateBatch(entries);
  };
  const scanMs: number[] = [];
  const bumpMs: number[] = [];
  let deleted = 0;
  for (let round = 0; round < rounds; round++) {
    fill();
    let start = process.hrtime.bigint();
    // the former PolicyMaps.flushConnections
    const stale = [...policy.conntrack.keys()].filter(
      (key) => key.saddr === endpointAddress || key.daddr === endpointAddress,
    );
    for (const key of stale) policy.conntrack.delete(key);
    scanMs.push(Number(process.hrtime.bigint() - start) / 1e6);
    deleted = stale.length;
    fill();
    start = process.hrtime.bigint();
    policy.bumpRevisions([7]);
    bumpMs.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  for (const key of [...policy.conntrack.keys()]) policy.conntrack.delete(key);
  const scan = median(scanMs);
  const bump = median(bumpMs);
  return [
    [`scan cm_policy_ct, delete the endpoint's entries (before)`, deleted, scan.toFixed(1), "1"],
    ["bump the endpoint slot's revision (now)", 1, bump.toFixed(3), (bump / scan).toPrecision(2)],
  ];
}

function main(): void {
  const bpffs = mountPrivateBpffs("cm-bench-policy-");
  let datapath: Datapath | undefined;
  let policy: PolicyMaps | undefined;
  try {
    datapath = Datapath.load({ pinRoot: `${bpffs.path}/node`, objectDir: OBJECT_DIR });
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
      `established: repeat ${REPEAT}; new: median of ${SAMPLES} single runs, the connection's entry deleted before each)`,
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
    console.log();
    console.log("A policy narrows: established connections judged again (60k tracked, medians of 5)");
    console.log(table(["how", "entries written", "ms", "ratio"], narrowingTimes(policy)));
  } finally {
    policy?.close();
    datapath?.close();
    bpffs.cleanup();
  }
}

main();
