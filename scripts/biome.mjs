#!/usr/bin/env node
// Runs biome (lint + format) from its platform package. We depend on the platform package directly
// because the registry this project installs from serves only the platforms it runs on, and the
// @biomejs/biome wrapper's optional dependencies for other platforms would break `npm ci`.
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const pkg = `@biomejs/cli-${process.platform}-${process.arch}`;
let binary;
try {
  binary = join(dirname(require.resolve(`${pkg}/package.json`)), "biome");
} catch {
  console.error(
    `biome binary package ${pkg} is not installed; add it as a devDependency (npm install -D ${pkg})`,
  );
  process.exit(1);
}
const result = spawnSync(binary, process.argv.slice(2), { stdio: "inherit" });
process.exit(result.status ?? 1);
