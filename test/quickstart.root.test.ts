/**
 * The README's "Quickstart on kind", run as written on a lab whose clusters are as `kind create
 * cluster` leaves them (`meshctl lab up --no-install`): every line but `npm run image` and `kind …`
 * (the lab has the image's layers on its nodes already, as `kind load` would). The lab's contexts
 * and cluster names stand in for kind's (kind-cluster1 → <lab>-c1, cluster1 → c1), nothing else
 * changes. Its last line, the requests to the global service, is repeated until both clusters
 * answered (the remote backends arrive a moment after the pods are ready).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { waitFor } from "../lib/process.js";
import { type LabFixture, labFixture, labUpArgs, MESHCTL, meshctl } from "../testing/lab-fixture.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The quickstart's shell lines: continuations joined, comments and blank lines dropped. */
function quickstartLines(readme: string): string[] {
  const section = readme.slice(readme.indexOf("### Quickstart on kind"));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, "the README has a quickstart sh block");
  return block
    .replace(/\\\n\s*/g, "")
    .split("\n")
    .map((line) => line.replace(/\s+#.*$/, "").trim())
    .filter((line) => line && !line.startsWith("#"));
}

describe("the README's kind quickstart, on a lab without the mesh (root)", { timeout: 1_200_000 }, () => {
  let fixture: LabFixture;
  let lines: string[] = [];
  const forLab = (line: string) =>
    line
      .replace(/\bkind-cluster(\d)\b/g, `${fixture.name}-c$1`)
      .replace(/\bcluster(\d)\b/g, "c$1")
      .replaceAll("scripts/demo/", `${join(REPO, "scripts", "demo")}/`);
  const sh = (line: string, timeout = 400_000) =>
    spawnSync(
      "bash",
      ["-c", `set -euo pipefail\nmeshctl() { "${process.execPath}" "${MESHCTL}" "$@"; }\n${line}`],
      {
        cwd: fixture.dir,
        env: fixture.env,
        encoding: "utf8",
        timeout,
      },
    );

  before(async () => {
    lines = quickstartLines(readFileSync(join(REPO, "README.md"), "utf8"));
    fixture = await labFixture([{ workers: 1 }, { workers: 1 }]);
    const up = meshctl([...labUpArgs(fixture), "--no-install"], fixture.env);
    assert.equal(up.status, 0, up.stderr);
  });

  after(() => {
    if (!fixture) return;
    meshctl(["lab", "down", "--name", fixture.name], fixture.env);
    fixture.cleanup();
  });

  it("installs, connects and serves the global service from both clusters, line by line", async () => {
    const skipped = lines.filter((line) => /^(npm run image|kind |docker )/.test(line));
    assert.ok(
      skipped.some((line) => line.startsWith("kind create cluster")),
      "the block creates kind clusters",
    );
    const run = lines.filter((line) => !skipped.includes(line));
    const requests = run.at(-1) as string;
    assert.match(
      requests,
      /meshcurl.js http:\/\/echo\//,
      "the block ends with the requests to the global service",
    );
    for (const line of run.slice(0, -1)) {
      const result = sh(forLab(line));
      assert.equal(result.status, 0, `${forLab(line)}\n${result.stderr}${result.stdout}`);
    }
    const answered = await waitFor(
      "answers from both clusters' echo pods",
      () => {
        const result = sh(forLab(requests), 120_000);
        const clusters = new Set([...result.stdout.matchAll(/"cluster":"([^"]+)"/g)].map((m) => m[1]));
        return clusters.has("c1") && clusters.has("c2") ? clusters : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000 },
    );
    assert.deepEqual([...answered].sort(), ["c1", "c2"]);
  });
});
