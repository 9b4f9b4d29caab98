#!/usr/bin/env node
// Runs every compiled test file (dist/**/*.test.js) with node's test runner.
//   --unit      only tests that need neither root nor the kernel (files not named *.root.test.js)
//   --filter S  only files whose path contains S
//   --slow      also the long lab tests (files named *.slow.root.test.js, e.g. the ten-cluster lab):
//               never in a plain run or `npm test`; a --filter matching its file name selects it too
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { basename, join } from "node:path";

const args = process.argv.slice(2);
const unitOnly = args.includes("--unit");
const filterAt = args.indexOf("--filter");
const filter = filterAt >= 0 ? args[filterAt + 1] : undefined;
const slow = args.includes("--slow");

function findTests(dir) {
  const found = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (entry.endsWith(".test.js")) found.push(path);
  }
  return found;
}

const files = findTests("dist")
  .filter((f) => !f.startsWith(join("dist", "node_modules")))
  .filter((f) => !unitOnly || !f.endsWith(".root.test.js"))
  .filter((f) => !filter || f.includes(filter))
  .filter((f) => slow || !f.endsWith(".slow.root.test.js") || (filter && basename(f).includes(filter)))
  .sort();
if (files.length === 0) {
  console.error("no test files found under dist/ (did the build run?)");
  process.exit(1);
}
// One file at a time: root tests build labs and datapaths that share the host's kernel.
const result = spawnSync(
  process.execPath,
  [
    "--enable-source-maps",
    "--test",
    "--test-concurrency=1",
    // A file that leaves a handle open must not hang CI, and no single test may run forever.
    "--test-force-exit",
    "--test-timeout=900000",
    "--test-reporter=spec",
    ...files,
  ],
  { stdio: "inherit" },
);
process.exit(result.status ?? 1);
