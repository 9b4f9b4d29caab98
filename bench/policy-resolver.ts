/**
 * The policy resolver's incremental updates (issue 16, Performance), side by side in one run with
 * the baseline of resolving from scratch: a fresh resolver fed everything, then every endpoint's
 * full policy read out (what an agent without incremental updates would recompute and rewrite).
 *
 *   policy change: 100 local endpoints (each its own identity), 1k local identities; one
 *     CiliumNetworkPolicy selecting all 100 endpoints, ingress from the 100 `app=client`
 *     identities on two ports: apply it, change one port, delete it.
 *   remote cluster: a remote cluster's 10k identities arrive in one batch (as a sync does), with
 *     (a) no selector matching any of them; (b) every one selected by a rule (`fromEntities: mesh`)
 *     applying to all 100 endpoints: 10k × 100 = 1M key upserts.
 *
 * Each case: `--rounds` rounds (setup untimed, a fresh resolver per round), median wall time, and the
 * median of the per-round ratio incremental/scratch. Pure CPU, no root.
 *
 *   npx tsc -p . && node dist/bench/policy-resolver.js [--rounds 5]
 */
import { loadavg } from "node:os";
import { parsePolicy } from "../lib/policy/parse.js";
import { type IdentityInput, PolicyResolver } from "../lib/policy/resolver.js";
import type { ParsedPolicy } from "../lib/policy/rules.js";
import type { EndpointPolicyDelta } from "../lib/policy/types.js";

const at = process.argv.indexOf("--rounds");
const ROUNDS = at >= 0 ? Number(process.argv[at + 1]) : 5;
const ENDPOINTS = 100;
const LOCAL_IDENTITIES = 1000;
const REMOTE_IDENTITIES = 10_000;

const cnp = (name: string, spec: unknown): ParsedPolicy => {
  const { policy, errors } = parsePolicy(
    { apiVersion: "cilium.io/v2", kind: "CiliumNetworkPolicy", metadata: { name, namespace: "demo" }, spec },
    { clusterName: "c1" },
  );
  if (!policy) throw new Error(errors.list.map((e) => `${e.path}: ${e.message}`).join("; "));
  return policy;
};
const web = (ports: string[]) =>
  cnp("web", {
    endpointSelector: { matchLabels: { app: "web" } },
    ingress: [
      {
        fromEndpoints: [{ matchLabels: { app: "client" } }],
        toPorts: [{ ports: ports.map((port) => ({ port, protocol: "TCP" })) }],
      },
    ],
  });
const meshWide = cnp("mesh", {
  endpointSelector: { matchLabels: { app: "web" } },
  ingress: [{ fromEntities: ["mesh"] }],
});

const identity = (id: number, cluster: string, labels: Record<string, string>): IdentityInput => ({
  id,
  cluster,
  labels: [
    ...Object.entries(labels).map(([k, v]) => `k8s:${k}=${v}`),
    "k8s:io.kubernetes.pod.namespace=demo",
    `k8s:io.cilium.k8s.policy.cluster=${cluster}`,
  ],
});
const localIdentities = Array.from({ length: LOCAL_IDENTITIES }, (_, i) =>
  identity(65536 + 100 + i, "c1", { app: i < 100 ? "client" : `svc${i}`, n: String(i) }),
);
const remoteIdentities = Array.from({ length: REMOTE_IDENTITIES }, (_, i) =>
  identity(2 * 65536 + 1 + i, "c2", { app: "unmatched", n: String(i) }),
);

function world(policies: ParsedPolicy[], remote: IdentityInput[] = []): PolicyResolver {
  const r = new PolicyResolver({ clusterName: "c1" });
  r.upsertIdentities([...localIdentities, ...remote]);
  for (let i = 0; i < ENDPOINTS; i++)
    r.upsertEndpoint({
      id: `lxc${i}`,
      identity: 65536 + i,
      namespace: "demo",
      labels: [`k8s:app=web`, `k8s:n=${i}`],
    });
  for (const p of policies) r.upsertPolicy(p);
  return r;
}
/** The baseline: everything from scratch, every endpoint's full state read. */
function scratch(policies: ParsedPolicy[], remote: IdentityInput[] = []): number {
  const r = world(policies, remote);
  let entries = 0;
  for (let i = 0; i < ENDPOINTS; i++) entries += r.endpointPolicy(`lxc${i}`)?.entries.length ?? 0;
  return entries;
}
const keys = (deltas: EndpointPolicyDelta[]) =>
  deltas.reduce((n, d) => n + d.upserts.length + d.deletes.length, 0);

interface Case {
  name: string;
  /** untimed setup, then the timed incremental step; returns the keys the deltas carry */
  incremental: () => () => number;
  /** the same end state from scratch; returns the entries read */
  scratch: () => number;
}

const CASES: Case[] = [
  {
    name: "apply a policy (100 endpoints × 100 peers × 2 ports)",
    incremental: () => {
      const r = world([]);
      return () => keys(r.upsertPolicy(web(["80", "443"])));
    },
    scratch: () => scratch([web(["80", "443"])]),
  },
  {
    name: "apply it with a remote cluster's 10k identities present",
    incremental: () => {
      const r = world([], remoteIdentities);
      return () => keys(r.upsertPolicy(web(["80", "443"])));
    },
    scratch: () => scratch([web(["80", "443"])], remoteIdentities),
  },
  {
    name: "change one port of it",
    incremental: () => {
      const r = world([web(["80", "443"])]);
      return () => keys(r.upsertPolicy(web(["80", "8443"])));
    },
    scratch: () => scratch([web(["80", "8443"])]),
  },
  {
    name: "delete it",
    incremental: () => {
      const r = world([web(["80", "443"])]);
      return () => keys(r.deletePolicy({ kind: "CiliumNetworkPolicy", namespace: "demo", name: "web" }));
    },
    scratch: () => scratch([]),
  },
  {
    name: "10k remote identities, none matched",
    incremental: () => {
      const r = world([web(["80"])]);
      return () => keys(r.upsertIdentities(remoteIdentities));
    },
    scratch: () => scratch([web(["80"])], remoteIdentities),
  },
  {
    name: "10k remote identities, matched by all 100 endpoints",
    incremental: () => {
      const r = world([meshWide]);
      return () => keys(r.upsertIdentities(remoteIdentities));
    },
    scratch: () => scratch([meshWide], remoteIdentities),
  },
  {
    name: "the same 10k identities removed",
    incremental: () => {
      const r = world([meshWide], remoteIdentities);
      return () => keys(r.deleteIdentities(remoteIdentities.map((i) => i.id)));
    },
    scratch: () => scratch([meshWide]),
  },
];

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const time = (fn: () => number): [number, number] => {
  const start = process.hrtime.bigint();
  const result = fn();
  return [Number(process.hrtime.bigint() - start) / 1e6, result];
};

console.log(`policy resolver, ${ROUNDS} rounds, load ${loadavg()[0].toFixed(1)}`);
console.log("| case | incremental ms | keys in deltas | from scratch ms | entries | incremental / scratch |");
console.log("|---|---:|---:|---:|---:|---:|");
for (const c of CASES) {
  const inc: number[] = [];
  const full: number[] = [];
  const ratios: number[] = [];
  let changed = 0;
  let entries = 0;
  for (let round = 0; round < ROUNDS; round++) {
    // alternate the order so that drift (GC, load) hits both
    const runs: Array<() => void> = [
      () => {
        const step = c.incremental();
        const [ms, n] = time(step);
        inc.push(ms);
        changed = n;
      },
      () => {
        const [ms, n] = time(c.scratch);
        full.push(ms);
        entries = n;
      },
    ];
    if (round % 2) runs.reverse();
    for (const run of runs) run();
    ratios.push(inc[round] / full[round]);
  }
  console.log(
    `| ${c.name} | ${median(inc).toFixed(1)} | ${changed} | ${median(full).toFixed(1)} | ${entries} | ${median(ratios).toFixed(3)} |`,
  );
}
