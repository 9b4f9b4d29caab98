/**
 * What `meshctl clustermesh …` does, loaded by ./clustermesh.ts only when a clustermesh command
 * runs: the one place this command loads client-node, node-forge and the lab.
 */
import { readFileSync } from "node:fs";
import { KubeConfig } from "@kubernetes/client-node";
import type { EncryptionMode } from "../../lib/api/encryption.js";
import { type ConnectionMode, connectClusters, disconnectClusters } from "../../lib/clustermesh/connect.js";
import { disableClusterMesh } from "../../lib/clustermesh/disable.js";
import { checkEnableFlags, enableClusterMesh } from "../../lib/clustermesh/enable.js";
import { kubeConfigFor } from "../../lib/k8s/client.js";
import { UsageError } from "../../lib/usage-error.js";
import { type OutputFormat, printJson, progress } from "../output.js";
import { clustermeshStatus, driftLines, isHealthy, renderStatus } from "./clustermesh-status.js";
import { labClusterOf } from "./lab-facts.js";

interface Target {
  context: string;
  /** Checked to exist when parsed (./clustermesh.ts kubeconfigFile). */
  kubeconfig?: string;
}

export function kubeConfig(context: string, file: string | undefined): KubeConfig {
  if (file) {
    try {
      new KubeConfig().loadFromFile(file);
    } catch (error) {
      throw new UsageError(
        `--kubeconfig: ${file} cannot be read as a kubeconfig (YAML with clusters, users, contexts)`,
        {
          cause: error,
        },
      );
    }
  }
  return kubeConfigFor(context, file);
}

export async function enableAction(
  options: Target & {
    clusterName?: string;
    clusterId?: number;
    maxConnectedClusters?: number;
    encryption?: EncryptionMode;
    caCert?: string;
    caKey?: string;
    nodePort: number;
  },
): Promise<void> {
  if (Boolean(options.caCert) !== Boolean(options.caKey))
    throw new UsageError("--ca-cert and --ca-key go together");
  checkEnableFlags(options);
  const kc = kubeConfig(options.context, options.kubeconfig);
  const lab = await labClusterOf(kc);
  const enabled = await enableClusterMesh(kc, {
    context: options.context,
    kubeconfig: options.kubeconfig,
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
  else
    progress(
      `Not a lab cluster: the clustermesh-apiserver Deployment of meshctl install serves it (meshctl install --context ${options.context} … if it is not installed)`,
    );
}

export async function disableAction(options: Target): Promise<void> {
  const kc = kubeConfig(options.context, options.kubeconfig);
  const lab = await labClusterOf(kc);
  const contexts = kc.getContexts().map((c) => c.name);
  await disableClusterMesh(kc, {
    context: options.context,
    kubeconfig: options.kubeconfig,
    // In a lab the context of a cluster is known; elsewhere a context named like the cluster is a
    // good guess, and otherwise the hint says what to fill in.
    contextOf: (cluster) =>
      lab?.contexts.find((c) => c.cluster === cluster)?.context ??
      (contexts.includes(cluster) ? cluster : `<context of ${cluster}>`),
    progress,
  });
  if (lab) await lab.stopClusterMesh(progress);
}

type ConnectionOptions = Target & { destinationContext: string[]; connectionMode: ConnectionMode };

export async function connectAction(options: ConnectionOptions & { allowMismatchingCa: boolean }) {
  await connectClusters((ctx) => kubeConfig(ctx, options.kubeconfig), {
    source: options.context,
    destinations: options.destinationContext,
    mode: options.connectionMode,
    allowMismatchingCa: options.allowMismatchingCa,
    kubeconfig: options.kubeconfig,
    progress,
  });
}

export async function disconnectAction(options: ConnectionOptions) {
  await disconnectClusters((ctx) => kubeConfig(ctx, options.kubeconfig), {
    source: options.context,
    destinations: options.destinationContext,
    mode: options.connectionMode,
    kubeconfig: options.kubeconfig,
    progress,
  });
}

export async function statusAction(
  options: Target & { wait: boolean; waitDuration: number; output: OutputFormat },
): Promise<void> {
  const kc = kubeConfig(options.context, options.kubeconfig);
  const deadline = Date.now() + options.waitDuration;
  let report = await clustermeshStatus(kc, options.context, options.kubeconfig);
  while (options.wait && !isHealthy(report) && Date.now() < deadline) {
    const c = report.connectivity;
    const notReady = c.totalNodes - c.fullyConnected;
    process.stderr.write(
      `⌛ Waiting (${Math.round((deadline - Date.now()) / 1000)}s) for clusters to be connected and programmed: ${notReady} nodes are not ready, ${c.drift.length} node/remote pairs drift\n`,
    );
    // short: a drift being repaired or a session coming up is often a matter of a second
    await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, Math.max(0, deadline - Date.now()))));
    report = await clustermeshStatus(kc, options.context, options.kubeconfig);
  }
  if (options.output === "json") printJson(report);
  else process.stdout.write(`${renderStatus(report)}\n`);
  if (!isHealthy(report)) {
    process.exitCode = 1;
    if (options.wait && report.connectivity.drift.length)
      process.stderr.write(
        `❌ Timed out after ${Math.round(options.waitDuration / 1000)}s with the BPF maps still drifting:\n${driftLines(report).join("\n")}\n`,
      );
  }
}
