/**
 * Runs Kubernetes' own e2e test binary (toolchain/kubernetes-e2e, built once into the cache by
 * scripts/go-build.sh) against one cluster of a running lab: loads the e2e images into the lab's
 * image store, points the binary at the cluster's admin kubeconfig, and counts the JUnit report.
 */
import { spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { componentKubeconfigPath } from "../../lab/control-plane.js";
import { loadImages } from "../../lab/image.js";
import { goBuild } from "../../lab/kubernetes/binaries.js";
import { LabJournal } from "../../lab/state.js";
import { labPaths } from "../../lab/up.js";
import { e2eImages } from "./images.js";
import { countByGroup, type GroupCounts, parseJUnit, type SpecResult } from "./junit.js";
import { SpecProgress } from "./progress.js";

export interface E2eOptions {
  lab: string;
  cluster: string;
  /** Ginkgo focus/skip: regular expressions over the full spec text (Go RE2 syntax). */
  focus: string;
  skip?: string;
  /** JUnit report and the binary's full output (e2e.log) go here. */
  reportDir: string;
  /** Whole-suite deadline (ginkgo --timeout). */
  timeoutMinutes?: number;
  progress?: (line: string) => void;
  /** Aborting stops the binary (SIGTERM: Ginkgo runs its cleanups and writes the report). */
  signal?: AbortSignal;
}

export interface E2eResult {
  exitCode: number | null;
  specs: SpecResult[];
  groups: Map<string, GroupCounts>;
  seconds: number;
  log: string;
}

export class E2eRunError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "E2eRunError";
  }
}

export async function runE2e(options: E2eOptions): Promise<E2eResult> {
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const journal = LabJournal.open(options.lab);
  if (!journal) throw new E2eRunError(`--name: no lab "${options.lab}"; start one with meshctl lab up`);
  const plan = journal.snapshot.plan;
  const clusters = plan.clusters.map((cluster) => cluster.name);
  if (!clusters.includes(options.cluster)) {
    throw new E2eRunError(
      `--cluster: lab "${options.lab}" has no cluster "${options.cluster}" (it has ${clusters.join(", ")})`,
    );
  }
  // the cluster's admin kubeconfig the lab keeps (the one meshctl uses)
  const kubeconfig = componentKubeconfigPath(journal, options.cluster, "meshctl");
  const paths = labPaths(plan);
  const bin = (await goBuild(["kubernetes-e2e"], progress))["kubernetes-e2e"];
  // the agnhost layer goes on the lab's tmpfs (removed by lab down): overlayfs refuses a lower
  // layer inside another one, and the host's root (where the lab's state is) is the layer below
  loadImages(paths.imageStore, e2eImages(join(bin, "agnhost"), join(paths.shm, "e2e-images", "agnhost")));

  const focus = new RegExp(options.focus);
  const skip = options.skip ? new RegExp(options.skip) : undefined;
  mkdirSync(options.reportDir, { recursive: true });
  const log = join(options.reportDir, "e2e.log");
  const args = [
    `--kubeconfig=${kubeconfig}`,
    // no cloud: the framework's generic provider (no load balancers, no node SSH)
    "--provider=skeleton",
    `--report-dir=${options.reportDir}`,
    `--ginkgo.focus=${options.focus}`,
    ...(options.skip ? [`--ginkgo.skip=${options.skip}`] : []),
    `--ginkgo.timeout=${options.timeoutMinutes ?? 120}m`,
    "--ginkgo.no-color",
    "--ginkgo.v",
  ];
  progress(`e2e: ${join(bin, "e2e.test")} ${args.join(" ")}`);
  const started = Date.now();
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    const out = createWriteStream(log);
    const child = spawn(join(bin, "e2e.test"), args, {
      stdio: ["ignore", "pipe", "pipe"],
      // kubectl (the framework execs into pods with it) from PATH; no user kubeconfig leaks in
      env: { ...process.env, KUBECONFIG: kubeconfig },
    });
    const stop = () => child.kill("SIGTERM");
    options.signal?.addEventListener("abort", stop, { once: true });
    let pending = "";
    const follower = new SpecProgress();
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out.write(chunk);
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const done = follower.line(line);
        if (done) progress(done);
      }
    });
    child.stderr.on("data", (chunk) => out.write(chunk));
    child.on("error", (error) => reject(new E2eRunError("could not start e2e.test", { cause: error })));
    child.on("close", (code) => {
      options.signal?.removeEventListener("abort", stop);
      out.end(() => resolve(code));
    });
  });
  const junit = join(options.reportDir, "junit_01.xml");
  if (!existsSync(junit)) {
    throw new E2eRunError(`e2e.test exited ${exitCode} without a JUnit report; its output: ${log}`);
  }
  const specs = parseJUnit(readFileSync(junit, "utf8"), focus, skip);
  return { exitCode, specs, groups: countByGroup(specs), seconds: (Date.now() - started) / 1000, log };
}

/** "group: N passed, N failed, N skipped" lines, then each failed spec with its first message line. */
export function summary(result: E2eResult): string[] {
  const lines = [...result.groups].map(
    ([group, c]) =>
      `${group}: ${c.passed} passed, ${c.failed} failed, ${c.skipped} skipped${c.notRun ? `, ${c.notRun} not run (suite timeout or interrupt)` : ""}`,
  );
  for (const spec of result.specs.filter((s) => s.state === "failed"))
    lines.push(`FAILED ${spec.name}${spec.message ? `\n    ${spec.message}` : ""}`);
  lines.push(`${result.specs.length} specs in ${Math.round(result.seconds)} s; full output: ${result.log}`);
  return lines;
}
