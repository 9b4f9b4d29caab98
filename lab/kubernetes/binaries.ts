/**
 * The real Kubernetes, etcd and CoreDNS binaries, built on first use by scripts/go-build.sh into a
 * cache outside the repository (see toolchain/README.md). A target that is built already costs one
 * short bash run; a cold one takes minutes, with the script's progress lines on our stderr.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root: this file is dist/lab/kubernetes/binaries.js. */
const REPO = fileURLToPath(new URL("../../../", import.meta.url));
export const GO_BUILD_SCRIPT = join(REPO, "scripts", "go-build.sh");

export type GoBuildTarget = "kubernetes" | "etcd" | "coredns" | "kubernetes-e2e" | "promlint";

export class GoBuildError extends Error {
  constructor(
    readonly targets: GoBuildTarget[],
    readonly exitCode: number | null,
    readonly output: string,
  ) {
    super(
      `scripts/go-build.sh ${targets.join(" ")} failed (exit ${exitCode ?? "signal"}):\n${output.trim().split("\n").slice(-30).join("\n")}`,
    );
    this.name = "GoBuildError";
  }
}

export interface ControlPlaneBinaries {
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  etcd: string;
}

/**
 * Runs the build script for the targets and returns each target's binary directory. Progress goes
 * to `progress` line by line (default: our stderr); the script's own error text ends up in the
 * thrown GoBuildError (it names the log file of a failed build).
 */
export function goBuild(
  targets: GoBuildTarget[],
  progress: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<Record<GoBuildTarget, string>> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", [GO_BUILD_SCRIPT, ...targets], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let pending = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
      pending += chunk;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) progress(line);
    });
    child.on("error", (error) => reject(new Error(`could not run ${GO_BUILD_SCRIPT}`, { cause: error })));
    child.on("close", (code) => {
      if (pending) progress(pending);
      if (code !== 0) {
        reject(new GoBuildError(targets, code, stderr));
        return;
      }
      const dirs = stdout.trim().split("\n");
      if (dirs.length !== targets.length) {
        reject(new GoBuildError(targets, code, `expected ${targets.length} directories, got:\n${stdout}`));
        return;
      }
      resolve(Object.fromEntries(targets.map((t, i) => [t, dirs[i]])) as Record<GoBuildTarget, string>);
    });
  });
}

/** Builds (once) and locates every binary a lab control plane runs (CoreDNS is built when deployed). */
export async function controlPlaneBinaries(progress?: (line: string) => void): Promise<ControlPlaneBinaries> {
  const dirs = await goBuild(["kubernetes", "etcd"], progress);
  return {
    kubeApiserver: join(dirs.kubernetes, "kube-apiserver"),
    kubeControllerManager: join(dirs.kubernetes, "kube-controller-manager"),
    kubeScheduler: join(dirs.kubernetes, "kube-scheduler"),
    etcd: join(dirs.etcd, "etcd"),
  };
}

/** Builds (once) and locates the CoreDNS binary. */
export async function corednsBinary(progress?: (line: string) => void): Promise<string> {
  return join((await goBuild(["coredns"], progress)).coredns, "coredns");
}
