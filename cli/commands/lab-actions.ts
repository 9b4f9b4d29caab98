/**
 * What `meshctl lab …` does, loaded by ./lab.ts only when a lab command runs: the one place the CLI
 * reaches into the lab. Each action imports the lab modules it needs when it runs (`lab status`
 * never loads what `lab up` needs). Bad input from the lab (LabConfigError, an existing lab, a failed
 * preflight) extends UsageError: one line, exit code 2.
 */
import type { EncryptionMode, IpsecBackendChoice } from "../../lib/api/encryption.js";
import { UsageError } from "../../lib/usage-error.js";
import { type OutputFormat, printJson, printTable, progress } from "../output.js";
import { existingLabName } from "./lab-name.js";

export async function labUpAction(options: {
  name?: string;
  config: string[];
  /** --clusters N: generated one-node clusters instead of --config files. */
  clusters?: string;
  mesh?: string;
  /** --connect / --no-connect; default: connect with --clusters only. */
  connect?: boolean;
  kvstoremesh?: "on" | "off";
  encryption: EncryptionMode;
  ipsecBackend?: string;
  /** false with --no-install: no meshctl install after the clusters are up. */
  install: boolean;
}): Promise<void> {
  const [{ IPSEC_BACKEND_CHOICES }, { DEFAULT_LAB_NAME }, { labUp }] = await Promise.all([
    import("../../lib/api/encryption.js"),
    import("../../lab/lab-name.js"),
    import("../../lab/up.js"),
  ]);
  if (options.ipsecBackend !== undefined) {
    if (!(IPSEC_BACKEND_CHOICES as readonly string[]).includes(options.ipsecBackend))
      throw new UsageError(
        `--ipsec-backend: "${options.ipsecBackend}" is not one of ${IPSEC_BACKEND_CHOICES.join(", ")}`,
      );
    if (options.encryption !== "ipsec")
      throw new UsageError(
        `--ipsec-backend: only with --encryption ipsec (this lab's encryption is ${options.encryption})`,
      );
  }
  let clusters: number | undefined;
  if (options.clusters !== undefined) {
    if (options.config.length > 0)
      throw new UsageError(
        "--clusters: generates the kind configs; leave out --config (or give only --config files)",
      );
    if (!/^\d+$/.test(options.clusters))
      throw new UsageError(`--clusters: "${options.clusters}" is not a whole number of clusters`);
    clusters = Number(options.clusters);
  }
  const connect = options.connect ?? clusters !== undefined;
  if (connect && !options.install)
    throw new UsageError("--connect: needs the mesh installed; leave out --no-install (or add --no-connect)");
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
  const plan = await labUp({
    name: options.name ?? DEFAULT_LAB_NAME,
    configFiles: options.config,
    clusters,
    meshFile: options.mesh,
    connect,
    kvstoremesh: options.kvstoremesh === undefined ? undefined : options.kvstoremesh === "on",
    encryption: options.encryption,
    ipsecBackend: options.ipsecBackend as IpsecBackendChoice | undefined,
    noMesh: !options.install,
    validated: (plan) => process.stderr.write(`Creating lab "${plan.name}" ...\n`),
    progress: (line) => progress(`${line} (${seconds()} s)`),
  });
  process.stderr.write(`Lab "${plan.name}" is up in ${seconds()} s.\n`);
  for (const cluster of plan.clusters) {
    process.stderr.write(
      `  ${cluster.name}: cluster id ${cluster.id}, pods ${cluster.podSubnets.join(",")}, services ${cluster.serviceSubnets.join(",")}\n`,
    );
  }
  process.stderr.write(
    `Next: meshctl lab status --name ${plan.name}; remove with: meshctl lab down --name ${plan.name}\n`,
  );
}

export async function labDownAction(options: { name?: string }): Promise<void> {
  const name = existingLabName(options.name);
  const { labDown } = await import("../../lab/down.js");
  const removed = await labDown({ name, progress });
  if (removed) progress(`Lab "${name}" removed`);
  else process.stderr.write(`No lab named "${name}"; nothing to remove.\n`);
}

export async function labStatusAction(options: { name?: string; output: OutputFormat }): Promise<void> {
  const [{ listLabs }, { labStatus }] = await Promise.all([
    import("../../lab/state.js"),
    import("../../lab/status.js"),
  ]);
  const labs = listLabs();
  const name = existingLabName(options.name);
  const status = await labStatus(name);
  if (!status) {
    if (options.output === "json") printJson(null);
    process.stderr.write(
      `No lab named "${name}"${labs.length ? ` (existing: ${labs.join(", ")})` : ""}; create one with: meshctl lab up --name ${name}\n`,
    );
    process.exitCode = 1;
    return;
  }
  if (options.output === "json") {
    printJson(status);
    return;
  }
  process.stdout.write(
    `Lab ${status.name}: ${status.complete ? "up" : `INCOMPLETE (an up was interrupted; run: meshctl lab down --name ${status.name})`}, created ${status.createdAt}, network ${status.bridge.name} ${status.bridge.address}\n\n`,
  );
  printTable(
    ["CLUSTER", "ID", "NODE", "ROLE", "ADDRESS", "NAMESPACE"],
    status.clusters.flatMap((cluster) =>
      cluster.nodes.map((node) => [
        cluster.name,
        cluster.id,
        node.name,
        node.role,
        node.ip,
        node.netnsPresent ? node.netns : `${node.netns} (missing)`,
      ]),
    ),
  );
  process.stdout.write("\n");
  printTable(
    ["CLUSTER", "PODS", "SERVICES", "ETCD"],
    status.clusters.map((c) => [c.name, c.podSubnets.join(","), c.serviceSubnets.join(","), c.etcdEndpoint]),
  );
  process.stdout.write("\n");
  printTable(
    ["PROCESS", "CLUSTER", "NODE", "PID", "STATE", "LOG"],
    status.processes.map((p) => [
      p.role,
      p.cluster ?? "-",
      p.node ?? "-",
      p.pid,
      p.running ? "running" : "exited",
      p.logFile,
    ]),
  );
}

export async function labRestartAction(
  component: string,
  options: { name?: string; node?: string; cluster?: string; all?: boolean },
): Promise<void> {
  const name = existingLabName(options.name);
  if (options.all && (options.node || options.cluster))
    throw new UsageError(
      "--all: restarts everywhere; leave it out to restart only on --node or in --cluster",
    );
  if (!options.all && !options.node && !options.cluster)
    throw new UsageError(
      `say where to restart ${component}: --node <node>, --cluster <cluster>, or --all for every ${component} of lab "${name}" (e.g. meshctl lab restart ${component} --name ${name} --all)`,
    );
  const { restartComponent } = await import("../../lab/restart.js");
  let restarted: Awaited<ReturnType<typeof restartComponent>>;
  try {
    restarted = await restartComponent({
      name,
      role: component,
      node: options.node,
      cluster: options.cluster,
    });
  } catch (error) {
    throw new UsageError((error as Error).message, { cause: error });
  }
  for (const p of restarted) progress(`Restarted ${p.role} on ${p.node}: ${p.now}`);
}
