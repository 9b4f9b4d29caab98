import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { hostRoutes } from "../lab/network.js";
import { cidrsOverlap, parseCidr } from "../lib/cidr.js";

/** dist/cli/main.js, the meshctl a user runs. */
export const MESHCTL = join(dirname(fileURLToPath(import.meta.url)), "..", "cli", "main.js");

export interface LabFixture {
  name: string;
  dir: string;
  configFiles: string[];
  meshFile: string;
  /** Every prefix the lab will use, for leak assertions. */
  prefixes: string[];
  /** A kubeconfig of the test's own: the lab merges its contexts here, never into the user's. */
  kubeconfig: string;
  /** Environment for meshctl and kubectl with KUBECONFIG set to it. */
  env: NodeJS.ProcessEnv;
  cleanup(): void;
}

export interface FixtureCluster {
  workers?: number;
}

/**
 * Writes kind configs for a lab with a unique name and subnets no existing route uses (so tests can
 * run beside a developer's lab), under 172.31.<n>.0/24 and 10.<200+n>.0.0/16.
 */
export async function labFixture(
  clusters: FixtureCluster[] = [{ workers: 1 }, { workers: 1 }],
): Promise<LabFixture> {
  const routes = await hostRoutes();
  const taken = (cidr: string) =>
    routes.some((route) => {
      try {
        return (
          route.dst !== "default" &&
          cidrsOverlap(parseCidr(route.dst.includes("/") ? route.dst : `${route.dst}/32`), parseCidr(cidr))
        );
      } catch {
        return false;
      }
    });
  let slot = -1;
  for (const candidate of shuffled([...Array(50).keys()])) {
    if (!taken(`172.31.${candidate}.0/24`) && !taken(`10.${200 + candidate}.0.0/16`)) {
      slot = candidate;
      break;
    }
  }
  if (slot < 0) throw new Error("no free subnet slot for a test lab");

  const name = `t${Math.random().toString(36).slice(2, 8)}`;
  const dir = mkdtempSync(join(tmpdir(), `mesh-${name}-`));
  const prefixes = [`172.31.${slot}.0/24`];
  const configFiles = clusters.map((cluster, i) => {
    const podSubnet = `10.${200 + slot}.${i * 16}.0/20`;
    const serviceSubnet = `10.${200 + slot}.${128 + i * 16}.0/20`;
    prefixes.push(podSubnet, serviceSubnet);
    const workers = Array.from({ length: cluster.workers ?? 1 }, () => "  - role: worker\n").join("");
    const file = join(dir, `c${i + 1}.yaml`);
    writeFileSync(
      file,
      `kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nname: c${i + 1}\nnodes:\n  - role: control-plane\n${workers}networking:\n  disableDefaultCNI: true\n  kubeProxyMode: none\n  podSubnet: ${podSubnet}\n  serviceSubnet: ${serviceSubnet}\n`,
    );
    return file;
  });
  const meshFile = join(dir, "mesh.yaml");
  writeFileSync(
    meshFile,
    `nodeSubnet: 172.31.${slot}.0/24\nclusters:\n${clusters.map((_, i) => `  c${i + 1}: { id: ${i + 1} }\n`).join("")}`,
  );
  const kubeconfig = join(dir, "kubeconfig");
  return {
    name,
    dir,
    configFiles,
    meshFile,
    prefixes,
    kubeconfig,
    env: { ...process.env, KUBECONFIG: kubeconfig },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function meshctl(
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 120_000,
): CliResult {
  const result = spawnSync(process.execPath, [MESHCTL, ...args], {
    encoding: "utf8",
    env,
    timeout: timeoutMs,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function meshctlAsync(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawn(process.execPath, [MESHCTL, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
}

export function kubectl(fixture: LabFixture, cluster: string, args: string[]): CliResult {
  const result = spawnSync("kubectl", ["--context", `${fixture.name}-${cluster}`, ...args], {
    encoding: "utf8",
    env: fixture.env,
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function labUpArgs(fixture: LabFixture): string[] {
  return [
    "lab",
    "up",
    "--name",
    fixture.name,
    ...fixture.configFiles.flatMap((f) => ["--config", f]),
    "--mesh",
    fixture.meshFile,
  ];
}

/** kubectl that must succeed: its stdout. */
export function kubectlOk(fixture: LabFixture, cluster: string, args: string[]): string {
  const result = kubectl(fixture, cluster, args);
  if (result.status !== 0) throw new Error(`kubectl ${args.join(" ")}: ${result.stderr}`);
  return result.stdout;
}

/** A shell script in a pod (kubectl exec … -- sh -c). */
export function execInPod(
  fixture: LabFixture,
  cluster: string,
  pod: { namespace: string; name: string },
  script: string,
): CliResult {
  return kubectl(fixture, cluster, ["-n", pod.namespace, "exec", pod.name, "--", "sh", "-c", script]);
}
