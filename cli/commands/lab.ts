import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, Option } from "commander";
import { labDown } from "../../lab/down.js";
import { DEFAULT_LAB_NAME, labNameProblem } from "../../lab/plan.js";
import { restartComponent } from "../../lab/restart.js";
import { listLabs } from "../../lab/state.js";
import { labStatus } from "../../lab/status.js";
import { labUp } from "../../lab/up.js";
import {
  type EncryptionMode,
  IPSEC_BACKEND_CHOICES,
  type IpsecBackendChoice,
} from "../../lib/api/encryption.js";
import { UsageError } from "../../lib/usage-error.js";
import { parseOutputFormat, printJson, printTable, progress } from "../output.js";

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const DEFAULT_CONFIGS = ["cluster1.yaml", "cluster2.yaml"].map((file) =>
  join(packageRoot, "kind-configs", file),
);

function labName(value: string): string {
  const problem = labNameProblem(value);
  if (problem) throw new UsageError(`--name: ${problem}`);
  return value;
}

const nameOption = () =>
  new Option("--name <name>", "lab name (prefixes its namespaces, links and kubeconfig contexts)")
    .default(DEFAULT_LAB_NAME)
    .argParser(labName);

export function labCommand(): Command {
  const lab = new Command("lab").description(
    "a multi-cluster lab on this machine: one network namespace per node",
  );

  lab
    .command("up")
    .description("create the clusters described by kind configs")
    .addOption(nameOption())
    .option(
      "--config <file>",
      "kind Cluster config (repeat for more clusters)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option(
      "--mesh <file>",
      "mesh file with cluster ids and the node subnet (default: mesh.yaml beside the first config)",
    )
    .addOption(
      new Option("--encryption <mode>", "node-to-node encryption of pod traffic in every cluster")
        .choices(["none", "wireguard", "ipsec"])
        .default("none"),
    )
    .addOption(
      new Option(
        "--ipsec-backend <backend>",
        "with --encryption ipsec: auto (kernel XFRM where the kernel has ESP, strongSwan userspace ESP elsewhere), or force one",
      ).choices([...IPSEC_BACKEND_CHOICES]),
    )
    .addHelpText("after", `\nWithout --config: ${DEFAULT_CONFIGS.join(" and ")}.`)
    .action(
      async (options: {
        name: string;
        config?: string[];
        mesh?: string;
        encryption: EncryptionMode;
        ipsecBackend?: IpsecBackendChoice;
      }) => {
        if (options.ipsecBackend && options.encryption !== "ipsec")
          throw new UsageError(
            `--ipsec-backend: only with --encryption ipsec (this lab's encryption is ${options.encryption})`,
          );
        const started = Date.now();
        process.stderr.write(`Creating lab "${options.name}" ...\n`);
        const plan = await labUp({
          name: options.name,
          configFiles: options.config ?? DEFAULT_CONFIGS,
          meshFile: options.mesh,
          encryption: options.encryption,
          ipsecBackend: options.ipsecBackend,
          progress: (line) => progress(`${line} (${((Date.now() - started) / 1000).toFixed(1)} s)`),
        });
        process.stderr.write(
          `Lab "${plan.name}" is up in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`,
        );
        for (const cluster of plan.clusters) {
          process.stderr.write(
            `  ${cluster.name}: cluster id ${cluster.id}, pods ${cluster.podSubnets.join(",")}, services ${cluster.serviceSubnets.join(",")}\n`,
          );
        }
        process.stderr.write(
          `Next: meshctl lab status --name ${plan.name}; remove with: meshctl lab down --name ${plan.name}\n`,
        );
      },
    );

  lab
    .command("down")
    .description("remove a lab and everything it created (also after a crashed or interrupted up)")
    .addOption(nameOption())
    .action(async (options: { name: string }) => {
      const removed = await labDown({ name: options.name, progress });
      if (!removed) process.stderr.write(`No lab named "${options.name}"; nothing to remove.\n`);
    });

  lab
    .command("status")
    .description("show a lab's clusters, nodes, addresses and processes")
    .addOption(new Option("--name <name>", "lab name (default: the only lab, or 'lab')").argParser(labName))
    .addOption(
      new Option("-o, --output <format>", "text or json").default("text").argParser(parseOutputFormat),
    )
    .action(async (options: { name?: string; output: "text" | "json" }) => {
      const labs = listLabs();
      const name = options.name ?? (labs.length === 1 ? labs[0] : DEFAULT_LAB_NAME);
      const status = await labStatus(name);
      if (!status) {
        if (options.output === "json") printJson(null);
        process.stderr.write(
          `No lab named "${name}"${labs.length ? ` (existing: ${labs.join(", ")})` : ""}; create one with: meshctl lab up\n`,
        );
        process.exitCode = 1;
        return;
      }
      if (options.output === "json") {
        printJson(status);
        return;
      }
      process.stdout.write(
        `Lab ${status.name}: ${status.complete ? "up" : "INCOMPLETE (an up was interrupted; run meshctl lab down)"}, created ${status.createdAt}, network ${status.bridge.name} ${status.bridge.address}\n\n`,
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
        status.clusters.map((c) => [
          c.name,
          c.podSubnets.join(","),
          c.serviceSubnets.join(","),
          c.etcdEndpoint,
        ]),
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
    });

  lab
    .command("restart")
    .description("stop a lab component (agent, kubelet, kube-apiserver, …) and start it again as before")
    .argument(
      "<component>",
      "agent, kubelet, kube-apiserver, controllers, etcd, clustermesh-apiserver, clustermesh-etcd",
    )
    .addOption(nameOption())
    .option("--node <node>", "only on this node")
    .option("--cluster <cluster>", "only in this cluster")
    .action(async (component: string, options: { name: string; node?: string; cluster?: string }) => {
      try {
        const restarted = await restartComponent({
          name: options.name,
          role: component,
          node: options.node,
          cluster: options.cluster,
        });
        for (const p of restarted) progress(`Restarted ${p.role} on ${p.node} (PID ${p.pid})`);
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    });

  return lab;
}
