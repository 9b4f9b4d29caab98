#!/usr/bin/env node
// Stamps dist/build-info.json with the git commit being built, for `meshctl version` in an installed
// package that has no .git (a checkout reads .git itself). Run by `npm run build` and `npm pack`.
// Without git or outside a checkout it writes nothing and says so: meshctl then reports "unknown".
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const head = spawnSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8" });
if (head.status !== 0 || !/^[0-9a-f]{40}$/.test(head.stdout.trim())) {
  console.error(
    `stamp-build-info: no git commit here (${(head.stderr || head.error?.message || "").trim()}); not stamped`,
  );
  process.exit(0);
}
mkdirSync(join(root, "dist"), { recursive: true });
writeFileSync(join(root, "dist", "build-info.json"), `${JSON.stringify({ commit: head.stdout.trim() })}\n`);
