import { readFileSync } from "node:fs";
import { Command, Option } from "commander";
import { findLabCluster, startLabClusterMesh } from "../../lab/clustermesh.js";
import { type ConnectionMode, connectClusters, disconnectClusters } from "../../lib/clustermesh/connect.js";
import { enableClusterMesh } from "../../lib/clustermesh/enable.js";
import { DEFAULT_APISERVER_NODE_PORT, type EncryptionMode } from "../../lib/clustermesh/resources.js";
import { kubeConfigFor } from "../../lib/k8s/client.js";
import { progress, UsageError } from "../output.js";

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
        const lab = findLabCluster(kc);
        const enabled = await enableClusterMesh(kc, {
          context: options.context,
          clusterName: options.clusterName ?? lab?.cluster.name,
          clusterId: options.clusterId ?? lab?.cluster.id,
          maxConnectedClusters: options.maxConnectedClusters,
          encryption: options.encryption,
          ca:
            options.caCert && options.caKey
              ? { certPem: readFileSync(options.caCert, "utf8"), keyPem: readFileSync(options.caKey, "utf8") }
              : undefined,
          nodePort: options.nodePort,
          progress,
        });
        if (lab) await startLabClusterMesh(lab, enabled, options.nodePort, progress);
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

  return command;
}
