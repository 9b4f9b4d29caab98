/**
 * meshctl start-up, issue 11 item 6: `meshctl --help`, `meshctl version` and `meshctl lab status`
 * (no lab: an empty MESH_LAB_STATE_ROOT) side by side with bare `node -e ''`, interleaved per round
 * (baseline, then each command, order rotating) so drift hits all. Each run goes through GNU time
 * (/usr/bin/time -f %M) for its peak RSS; wall time is measured here around the whole child. The
 * table gives medians and, per command, the median of the per-round ratios to the bare Node run
 * next to it. Goal: wall time ≤ 3× bare Node. No root needed.
 *
 *   npx tsc -p . && node dist/bench/cli.js [--rounds 20] [--warmup 2] [--meshctl other/dist/cli/main.js]
 *
 * --meshctl measures another build's meshctl the same way (e.g. an older commit's, for before/after).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}

const ROUNDS = option("rounds", 20);
const WARMUP = option("warmup", 2);
const TIME = "/usr/bin/time";
if (!existsSync(TIME)) throw new Error(`${TIME} missing: apt-get install time`);

const meshctlAt = process.argv.indexOf("--meshctl");
const MESHCTL =
  meshctlAt >= 0 ? process.argv[meshctlAt + 1] : fileURLToPath(new URL("../cli/main.js", import.meta.url));
const stateRoot = mkdtempSync(join(tmpdir(), "bench-cli-"));
const env = { ...process.env, MESH_LAB_STATE_ROOT: stateRoot };

interface Cell {
  name: string;
  argv: string[];
}
const BASELINE: Cell = { name: "node -e ''", argv: [process.execPath, "-e", ""] };
const CELLS: Cell[] = [
  { name: "meshctl --help", argv: [process.execPath, MESHCTL, "--help"] },
  { name: "meshctl version", argv: [process.execPath, MESHCTL, "version"] },
  { name: "meshctl lab status (no lab)", argv: [process.execPath, MESHCTL, "lab", "status"] },
];

interface Sample {
  wallMs: number;
  rssMiB: number;
  status: number | null;
}

function runOnce(cell: Cell): Sample {
  const rssFile = join(stateRoot, "rss");
  const start = process.hrtime.bigint();
  const result = spawnSync(TIME, ["-o", rssFile, "-f", "%M", ...cell.argv], { env, stdio: "ignore" });
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  // The exit codes go into the table: lab status without a lab exits 1 by design, and an older
  // build (--meshctl) may not know a command at all.
  const rssKiB = Number(readFileSync(rssFile, "utf8").trim().split("\n").at(-1));
  return { wallMs, rssMiB: rssKiB / 1024, status: result.status };
}

const exits = (samples: Sample[]) => [...new Set(samples.map((s) => s.status))].join(",");

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

try {
  for (let i = 0; i < WARMUP; i++) for (const cell of [BASELINE, ...CELLS]) runOnce(cell);
  const baseline: Sample[] = [];
  const samples = new Map<string, Sample[]>(CELLS.map((c) => [c.name, []]));
  const ratios = new Map<string, { wall: number[]; rss: number[] }>(
    CELLS.map((c) => [c.name, { wall: [], rss: [] }]),
  );
  for (let round = 0; round < ROUNDS; round++) {
    const base = runOnce(BASELINE);
    baseline.push(base);
    const order = CELLS.map((_, i) => CELLS[(i + round) % CELLS.length]);
    for (const cell of order) {
      const sample = runOnce(cell);
      samples.get(cell.name)?.push(sample);
      ratios.get(cell.name)?.wall.push(sample.wallMs / base.wallMs);
      ratios.get(cell.name)?.rss.push(sample.rssMiB / base.rssMiB);
    }
  }
  const rows: string[][] = [
    ["command", "wall ms (median)", "× node", "max RSS MiB (median)", "× node", "exit"],
    [
      BASELINE.name,
      median(baseline.map((s) => s.wallMs)).toFixed(0),
      "1.0",
      median(baseline.map((s) => s.rssMiB)).toFixed(1),
      "1.0",
      exits(baseline),
    ],
    ...CELLS.map((cell) => {
      const s = samples.get(cell.name) ?? [];
      const r = ratios.get(cell.name) ?? { wall: [], rss: [] };
      return [
        cell.name,
        median(s.map((x) => x.wallMs)).toFixed(0),
        median(r.wall).toFixed(1),
        median(s.map((x) => x.rssMiB)).toFixed(1),
        median(r.rss).toFixed(1),
        exits(s),
      ];
    }),
  ];
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  console.log(
    `${MESHCTL}: start-up, ${ROUNDS} rounds (+${WARMUP} warm-up), load average ${loadavg()[0].toFixed(1)}`,
  );
  for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i])).join("  "));
} finally {
  rmSync(stateRoot, { recursive: true, force: true });
}
