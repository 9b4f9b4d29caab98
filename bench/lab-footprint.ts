/**
 * The lab's footprint (issue 13): `meshctl lab up` wall time for a two-cluster lab (one worker
 * each) and the resident memory per process kind once it is up, before any pod of ours (CoreDNS
 * runs), summed over both clusters. `--runs N` labs one after another (default 2), reported as
 * median and max; the goal column is the (up ≤ 45 s).
 *
 *   node dist/bench/lab-footprint.js [--runs 2] [-o json]
 *
 * The Kubernetes binaries must be built (a first `lab up` builds them; that time is not a lab up).
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { controlPlaneBinaries, corednsBinary } from "../lab/kubernetes/binaries.js";
import { LabJournal } from "../lab/state.js";
import { waitFor } from "../lib/process.js";
import { kubectl, labFixture, labUpArgs, MESHCTL } from "../testing/lab-fixture.js";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "2" },
    output: { type: "string", short: "o", default: "text" },
  },
});
const runs = Number(values.runs);

/** RSS of one PID and its descendants (the kubelet's pods are its children only by cgroup; not counted). */
function rssKiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  } catch (error) {
    // the process exited between listing and reading: it holds no memory
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
}

interface Sample {
  upSeconds: number;
  rssMiBByRole: Record<string, number>;
  totalMiB: number;
}

async function sample(): Promise<Sample> {
  const fixture = await labFixture([{ workers: 1 }, { workers: 1 }]);
  try {
    const began = process.hrtime.bigint();
    const up = spawnSync(process.execPath, [MESHCTL, ...labUpArgs(fixture)], {
      encoding: "utf8",
      env: fixture.env,
      timeout: 600_000,
    });
    const upSeconds = Number(process.hrtime.bigint() - began) / 1e9;
    if (up.status !== 0) throw new Error(`lab up failed: ${up.stderr}`);
    // settled: CoreDNS available in both clusters (the lab is usable), then let start-up caches fill
    for (const cluster of ["c1", "c2"])
      await waitFor(
        `CoreDNS of ${cluster}`,
        () => {
          const out = kubectl(fixture, cluster, [
            "-n",
            "kube-system",
            "get",
            "deploy",
            "coredns",
            "-o",
            "json",
          ]);
          return out.status === 0 && JSON.parse(out.stdout).status?.availableReplicas >= 1;
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
    const journal = LabJournal.open(fixture.name);
    if (!journal) throw new Error(`lab ${fixture.name} has no journal`);
    const rssMiBByRole: Record<string, number> = {};
    for (const resource of journal.snapshot.resources) {
      if (resource.kind !== "process") continue;
      rssMiBByRole[resource.role] = (rssMiBByRole[resource.role] ?? 0) + rssKiB(resource.pid) / 1024;
    }
    const totalMiB = Object.values(rssMiBByRole).reduce((a, b) => a + b, 0);
    return { upSeconds, rssMiBByRole, totalMiB };
  } finally {
    spawnSync(process.execPath, [MESHCTL, "lab", "down", "--name", fixture.name], { env: fixture.env });
    fixture.cleanup();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main(): Promise<void> {
  await controlPlaneBinaries((line) => process.stderr.write(`${line}\n`));
  await corednsBinary((line) => process.stderr.write(`${line}\n`));
  const samples: Sample[] = [];
  for (let i = 0; i < runs; i++) {
    samples.push(await sample());
    process.stderr.write(`run ${i + 1}/${runs}: lab up ${samples[i].upSeconds.toFixed(1)} s\n`);
  }
  const roles = [...new Set(samples.flatMap((s) => Object.keys(s.rssMiBByRole)))].sort();
  const report = {
    runs,
    upSeconds: {
      median: median(samples.map((s) => s.upSeconds)),
      max: Math.max(...samples.map((s) => s.upSeconds)),
    },
    goalUpSeconds: 45,
    rssMiB: Object.fromEntries(
      roles.map((role) => [role, median(samples.map((s) => s.rssMiBByRole[role] ?? 0))]),
    ),
    totalRssMiB: median(samples.map((s) => s.totalMiB)),
  };
  if (values.output === "json") {
    console.log(JSON.stringify(report, null, 2));
    return;
  }
  console.log(
    `lab up (2 clusters, 1 worker each): median ${report.upSeconds.median.toFixed(1)} s, max ${report.upSeconds.max.toFixed(1)} s (goal ≤ ${report.goalUpSeconds} s)`,
  );
  console.log("RSS once up (both clusters, median over runs):");
  for (const role of roles)
    console.log(`  ${role.padEnd(24)} ${report.rssMiB[role].toFixed(0).padStart(6)} MiB`);
  console.log(`  ${"total".padEnd(24)} ${report.totalRssMiB.toFixed(0).padStart(6)} MiB`);
}

await main();
