/**
 * `meshctl clustermesh …`: the command definitions only. Every action loads its implementation from
 * ./clustermesh-actions.js when it runs (client-node, node-forge, the lab), so help and bad flags
 * are answered before anything heavy is loaded or any cluster is reached.
 */
import { existsSync, statSync } from "node:fs";
import { Command, Option } from "commander";
import { DEFAULT_APISERVER_NODE_PORT } from "../../lib/clustermesh/resources.js";
import { UsageError } from "../../lib/usage-error.js";
import { parseOutputFormat } from "../output.js";

const actions = () => import("./clustermesh-actions.js");

function integer(flag: string) {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new UsageError(`${flag}: "${value}" is not an integer`);
    return n;
  };
}

function contextList(value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(",").filter(Boolean)];
}

/** --kubeconfig must name a file: client-node would otherwise fail later with a bare ENOENT. */
export function kubeconfigFile(value: string): string {
  if (!existsSync(value))
    throw new UsageError(
      `--kubeconfig: no file at ${value} (give an existing kubeconfig, or leave the flag out to use $KUBECONFIG or ~/.kube/config)`,
    );
  if (!statSync(value).isFile()) throw new UsageError(`--kubeconfig: ${value} is not a file`);
  return value;
}

export function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h)$/.exec(text.trim());
  if (!match) throw new UsageError(`--wait-duration: "${text}" is not a duration like 90s or 5m`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[2] as "ms" | "s" | "m" | "h"];
  return Number(match[1]) * unit;
}

const contextOption = () =>
  new Option("--context <name>", "kubeconfig context of the cluster").makeOptionMandatory();
const kubeconfigOption = () =>
  new Option("--kubeconfig <file>", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)").argParser(
    kubeconfigFile,
  );

export function clustermeshCommand(): Command {
  const command = new Command("clustermesh").description("connect clusters into a mesh and show its health");

  command
    .command("enable")
    .description(
      "issue certificates, record the cluster's mesh name and id, and expose its clustermesh-apiserver",
    )
    .addOption(contextOption())
    .addOption(kubeconfigOption())
    .option("--cluster-name <name>", "the cluster's mesh name (required the first time)")
    .option(
      "--cluster-id <id>",
      "the cluster's mesh id, 1..max-connected-clusters (required the first time)",
      integer("--cluster-id"),
    )
    .option(
      "--max-connected-clusters <n>",
      "255 or 511; the same in every cluster of a mesh",
      integer("--max-connected-clusters"),
    )
    .addOption(
      new Option("--encryption <mode>", "node-to-node encryption").choices(["none", "wireguard", "ipsec"]),
    )
    .option("--ca-cert <file>", "PEM CA certificate to issue from (share one CA across the mesh)")
    .option("--ca-key <file>", "PEM key of --ca-cert")
    .option(
      "--node-port <port>",
      "NodePort of the clustermesh-apiserver service",
      integer("--node-port"),
      DEFAULT_APISERVER_NODE_PORT,
    )
    .action(async (options) => (await actions()).enableAction(options));

  command
    .command("disable")
    .description(
      "undo enable: remove the mesh name and id, the certificates and the clustermesh-apiserver Service (the CA stays); refused while connected to other clusters",
    )
    .addOption(contextOption())
    .addOption(kubeconfigOption())
    .action(async (options) => (await actions()).disableAction(options));

  const connection = (name: "connect" | "disconnect") =>
    command
      .command(name)
      .addOption(contextOption())
      .addOption(kubeconfigOption())
      .requiredOption(
        "--destination-context <names>",
        "the other cluster(s); repeat or comma-separate",
        contextList,
      )
      .addOption(
        new Option(
          "--connection-mode <mode>",
          "bidirectional, mesh (all listed clusters with each other) or unicast",
        )
          .choices(["bidirectional", "mesh", "unicast"])
          .default("bidirectional"),
      );

  connection("connect")
    .description(
      "connect clusters: each gets the other's access information; agents pick it up without a restart",
    )
    .option("--allow-mismatching-ca", "connect clusters whose CAs differ (each trusts the other's CA)", false)
    .action(async (options) => (await actions()).connectAction(options));

  connection("disconnect")
    .description("undo connect: remove each cluster's access information from the other")
    .action(async (options) => (await actions()).disconnectAction(options));

  command
    .command("status")
    .description("the clustermesh-apiserver's readiness and access information, and every node's connections")
    .addOption(contextOption())
    .addOption(kubeconfigOption())
    .option("--wait", "wait until every node is connected to every cluster", false)
    .addOption(
      new Option("--wait-duration <duration>", "how long --wait waits, e.g. 90s, 5m")
        .default(parseDuration("5m"), "5m")
        .argParser(parseDuration),
    )
    .addOption(
      new Option("-o, --output <format>", "text or json").default("text").argParser(parseOutputFormat),
    )
    .action(async (options) => (await actions()).statusAction(options));

  return command;
}
