/**
 * `meshctl lab …`: the command definitions only. Every action loads its implementation from
 * ./lab-actions.js when it runs (the one place this command imports the lab), so help and bad flags
 * never load the lab, client-node or etcd.
 */
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, Option } from "commander";
import { parseOutputFormat } from "../output.js";

const packageRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const DEFAULT_CONFIGS = ["cluster1.yaml", "cluster2.yaml"].map((file) =>
  join(packageRoot, "kind-configs", file),
);

const actions = () => import("./lab-actions.js");

/** The one --name rule of the commands that act on an existing lab (lab status|down|restart, agent status). */
export const EXISTING_LAB_NAME_HELP =
  'lab name (default: the only lab, else "lab"; several labs and none named "lab": --name is needed)';

const existingLabOption = () => new Option("--name <name>", EXISTING_LAB_NAME_HELP);

export function labCommand(): Command {
  const lab = new Command("lab").description(
    "a multi-cluster lab on this machine: one network namespace per node",
  );

  lab
    .command("up")
    .description("create the clusters described by kind configs")
    .addOption(
      new Option(
        "--name <name>",
        'lab name (prefixes its namespaces, links and kubeconfig contexts; 1-8 lower-case letters or digits; default "lab")',
      ),
    )
    .option(
      "--config <file>",
      "kind Cluster config (repeat for more clusters)",
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option(
      "--clusters <n>",
      "instead of --config: n one-node clusters cluster1..n (pods 10.<i>.0.0/16, services 10.<100+i>.0.0/16, id i), connected as a full mesh",
    )
    .option(
      "--mesh <file>",
      "mesh file with cluster ids and the node subnet (default: mesh.yaml beside the first config)",
    )
    .option(
      "--connect",
      "after the install, connect every cluster with every other (meshctl clustermesh connect --connection-mode mesh) and wait until every node is programmed (default with --clusters)",
    )
    .option("--no-connect", "with --clusters: leave the clusters unconnected")
    .addOption(
      new Option(
        "--kvstoremesh <mode>",
        "KVStoreMesh in every cluster's clustermesh-apiserver (clustermesh.apiserver.kvstoremesh.enabled); default: the install's",
      ).choices(["on", "off"]),
    )
    .addOption(
      new Option("--encryption <mode>", "node-to-node encryption of pod traffic in every cluster")
        .choices(["none", "wireguard", "ipsec"])
        .default("none"),
    )
    .option(
      "--ipsec-backend <backend>",
      "with --encryption ipsec: auto (kernel XFRM where the kernel has ESP, strongSwan userspace ESP elsewhere), kernel-xfrm or libipsec",
    )
    .option(
      "--no-install",
      "only the clusters (nodes NotReady, as a fresh kind cluster): install the mesh yourself with meshctl install",
    )
    .addHelpText("after", `\nWithout --config or --clusters: ${DEFAULT_CONFIGS.join(" and ")}.`)
    .action(async (options) =>
      (await actions()).labUpAction({
        ...options,
        config: options.config ?? (options.clusters === undefined ? DEFAULT_CONFIGS : []),
      }),
    );

  lab
    .command("down")
    .description("remove a lab and everything it created (also after a crashed or interrupted up)")
    .addOption(existingLabOption())
    .action(async (options) => (await actions()).labDownAction(options));

  lab
    .command("status")
    .description("show a lab's clusters, nodes, addresses and processes")
    .addOption(existingLabOption())
    .addOption(
      new Option("-o, --output <format>", "text or json").default("text").argParser(parseOutputFormat),
    )
    .action(async (options) => (await actions()).labStatusAction(options));

  lab
    .command("restart")
    .description("stop a lab component (agent, kubelet, kube-apiserver, …) and start it again as before")
    .argument(
      "<component>",
      "agent, kubelet, kube-apiserver, kube-controller-manager, kube-scheduler, kube-etcd, clustermesh-apiserver, clustermesh-etcd",
    )
    .addOption(existingLabOption())
    .option("--node <node>", "only on this node")
    .option("--cluster <cluster>", "only in this cluster")
    .option(
      "--all",
      "on every node and cluster of the lab (needed when neither --node nor --cluster is given)",
    )
    .action(async (component: string, options) => (await actions()).labRestartAction(component, options));

  return lab;
}
