/**
 * Checks a Prometheus text exposition (a /metrics body) with Prometheus' own code: the `promlint`
 * wrapper (toolchain/promlint, built once by scripts/go-build.sh) parses it with
 * github.com/prometheus/common/expfmt's TextParser, the parser of Prometheus' text-format scrape and
 * promtool, and lints it with client_golang's testutil/promlint, what `promtool check metrics` runs.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { goBuild } from "../lab/kubernetes/binaries.js";

export interface PromlintProblem {
  metric: string;
  text: string;
}

export interface PromlintReport {
  /** Metric families the parser found. */
  families: number;
  problems: PromlintProblem[];
}

/** The exposition does not parse: Prometheus would fail the whole scrape. */
export class ExpositionParseError extends Error {
  constructor(
    readonly parserMessage: string,
    readonly exposition: string,
  ) {
    super(`Prometheus' text parser rejects the exposition: ${parserMessage}`);
    this.name = "ExpositionParseError";
  }
}

let binary: Promise<string> | undefined;

/** Builds (once per process; a no-op of ~0.1 s once cached) and locates the promlint binary. */
export function promlintBinary(): Promise<string> {
  binary ??= goBuild(["promlint"]).then((dirs) => join(dirs.promlint, "promlint"));
  return binary;
}

/** Parses and lints `exposition`; throws ExpositionParseError when it does not parse. */
export async function promlint(exposition: string): Promise<PromlintReport> {
  const bin = await promlintBinary();
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(bin, [], { stdio: ["pipe", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
        out += chunk;
      });
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
        err += chunk;
      });
      child.on("error", (error) => reject(new Error(`could not run ${bin}`, { cause: error })));
      child.on("close", (exitCode) => resolve({ code: exitCode, stdout: out, stderr: err }));
      child.stdin.end(exposition);
    },
  );
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (error) {
    throw new Error(`promlint printed no JSON (exit ${code}): ${stdout}${stderr}`, { cause: error });
  }
  if (code === 1 && typeof (parsed as { error?: unknown }).error === "string") {
    throw new ExpositionParseError((parsed as { error: string }).error, exposition);
  }
  if (code !== 0) throw new Error(`promlint exited ${code}: ${stdout}${stderr}`);
  return parsed as PromlintReport;
}
