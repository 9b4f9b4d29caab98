/**
 * Kubernetes' e2e tests against a lab cluster:
 *   node dist/test/e2e/run.js --name <lab> --cluster <c> --focus <regex> [--skip <regex>]
 *        [--report-dir <dir>] [--timeout-minutes 120]
 * Prints a line per finished spec, then passed/failed/skipped per group; exits 1 on any failure.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { runE2e, summary } from "./runner.js";

const USAGE =
  "usage: node dist/test/e2e/run.js --name <lab> --cluster <c> --focus <regex> [--skip <regex>] [--report-dir <dir>] [--timeout-minutes <n>]";

async function main(): Promise<number> {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      options: {
        name: { type: "string" },
        cluster: { type: "string" },
        focus: { type: "string" },
        skip: { type: "string" },
        "report-dir": { type: "string" },
        "timeout-minutes": { type: "string" },
      },
      strict: true,
    }));
  } catch (error) {
    console.error(`${(error as Error).message}\n${USAGE}`);
    return 2;
  }
  for (const required of ["name", "cluster", "focus"]) {
    if (!values[required]) {
      console.error(`--${required} is required\n${USAGE}`);
      return 2;
    }
  }
  const timeout = values["timeout-minutes"] === undefined ? 120 : Number(values["timeout-minutes"]);
  if (!Number.isInteger(timeout) || timeout <= 0) {
    console.error(
      `--timeout-minutes: "${values["timeout-minutes"]}" is not a positive whole number\n${USAGE}`,
    );
    return 2;
  }
  for (const flag of ["focus", "skip"]) {
    try {
      if (values[flag]) new RegExp(values[flag] as string);
    } catch (error) {
      console.error(`--${flag}: ${(error as Error).message}`);
      return 2;
    }
  }
  const abort = new AbortController();
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => abort.abort());
  const result = await runE2e({
    signal: abort.signal,
    lab: values.name as string,
    cluster: values.cluster as string,
    focus: values.focus as string,
    skip: values.skip,
    reportDir: values["report-dir"] ?? mkdtempSync(join(tmpdir(), "e2e-report-")),
    timeoutMinutes: timeout,
    progress: (line) => console.log(line),
  });
  for (const line of summary(result)) console.log(line);
  return result.specs.some((s) => s.state === "failed") || result.specs.length === 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(error.message);
    process.exit(1);
  },
);
