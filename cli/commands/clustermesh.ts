import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import type { EncryptionMode } from "../../lib/api/encryption.js";
import { type ConnectionMode, connectClusters, disconnectClusters } from "../../lib/clustermesh/connect.js";
import { enableClusterMesh } from "../../lib/clustermesh/enable.js";
import { DEFAULT_APISERVER_NODE_PORT } from "../../lib/clustermesh/resources.js";
import { kubeConfigFor } from "../../lib/k8s/client.js";
import { UsageError } from "../../lib/usage-error.js";
import { parseOutputFormat, printJson, progress } from "../output.js";
import { clustermeshStatus, isHealthy, renderStatus } from "./clustermesh-status.js";
import { labClusterOf } from "./lab-facts.js";

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

const contextOption = () =>
  new Option("--context <name>", "kubeconfig context of the cluster").makeOptionMandatory();
const kubeconfigOption = () =>
  new Option("--kubeconfig <file>", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)");

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
    .action(
      async (options: {
        context: string;
        kubeconfig?: string;
        clusterName?: string;
        clusterId?: number;
        maxConnectedClusters?: number;
        encryption?: EncryptionMode;
        caCert?: string;
        caKey?: string;
        nodePort: number;
      }) => {
        if (Boolean(options.caCert) !== Boolean(options.caKey))
          throw new UsageError("--ca-cert and --ca-key go together");
        const kc = kubeConfigFor(options.context, options.kubeconfig);
        const lab = await labClusterOf(kc);
        const enabled = await enableClusterMesh(kc, {
          context: options.context,
          clusterName: options.clusterName ?? lab?.name,
          clusterId: options.clusterId ?? lab?.id,
          maxConnectedClusters: options.maxConnectedClusters,
          encryption: options.encryption,
          ca:
            options.caCert && options.caKey
              ? { certPem: readFileSync(options.caCert, "utf8"), keyPem: readFileSync(options.caKey, "utf8") }
              : undefined,
          nodePort: options.nodePort,
          progress,
        });
        if (lab) await lab.startClusterMesh(enabled, options.nodePort, progress);
        else progress("Not a lab cluster: deploy the clustermesh-apiserver manifests to serve the mesh");
      },
    );

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
    .action(
      async (options: {
        context: string;
        kubeconfig?: string;
        destinationContext: string[];
        connectionMode: ConnectionMode;
        allowMismatchingCa: boolean;
      }) => {
        await connectClusters((ctx) => kubeConfigFor(ctx, options.kubeconfig), {
          source: options.context,
          destinations: options.destinationContext,
          mode: options.connectionMode,
          allowMismatchingCa: options.allowMismatchingCa,
          progress,
        });
      },
    );

  connection("disconnect")
    .description("undo connect: remove each cluster's access information from the other")
    .action(
      async (options: {
        context: string;
        kubeconfig?: string;
        destinationContext: string[];
        connectionMode: ConnectionMode;
      }) => {
        await disconnectClusters((ctx) => kubeConfigFor(ctx, options.kubeconfig), {
          source: options.context,
          destinations: options.destinationContext,
          mode: options.connectionMode,
          progress,
        });
      },
    );

  command
    .command("status")
    .description("the clustermesh-apiserver's readiness and access information, and every node's connections")
    .addOption(contextOption())
    .addOption(kubeconfigOption())
    .option("--wait", "wait until every node is connected to every cluster", false)
    .option("--wait-duration <duration>", "how long --wait waits, e.g. 90s, 5m", "5m")
    .addOption(
      new Option("-o, --output <format>", "text or json").default("text").argParser(parseOutputFormat),
    )
    .action(
      async (options: {
        context: string;
        kubeconfig?: string;
        wait: boolean;
        waitDuration: string;
        output: "text" | "json";
      }) => {
        const kc = kubeConfigFor(options.context, options.kubeconfig);
        const deadline = Date.now() + parseDuration(options.waitDuration);
        let report = await clustermeshStatus(kc, options.context);
        while (options.wait && !isHealthy(report) && Date.now() < deadline) {
          const notReady = report.connectivity.totalNodes - report.connectivity.fullyConnected;
          process.stderr.write(
            `⌛ Waiting (${Math.round((deadline - Date.now()) / 1000)}s) for clusters to be connected: ${notReady} nodes are not ready\n`,
          );
          await new Promise((resolve) => setTimeout(resolve, 2_000));
          report = await clustermeshStatus(kc, options.context);
        }
        if (options.output === "json") printJson(report);
        else process.stdout.write(`${renderStatus(report)}\n`);
        if (!isHealthy(report)) process.exitCode = 1;
      },
    );

  return command;
}

function parseDuration(text: string): number {
  const match = /^(\d+)(ms|s|m|h)$/.exec(text.trim());
  if (!match) throw new UsageError(`--wait-duration: "${text}" is not a duration like 90s or 5m`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[2] as "ms" | "s" | "m" | "h"];
  return Number(match[1]) * unit;
}
