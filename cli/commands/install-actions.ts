/**
 * What `meshctl install|uninstall|status` do, loaded by ./install.ts only when one of them runs.
 */
import { readFileSync } from "node:fs";
import { stringify } from "yaml";
import type { EncryptionMode, IpsecBackendChoice } from "../../lib/api/encryption.js";
import { advertisedApiServer } from "../../lib/install/api-server-address.js";
import { install, summary } from "../../lib/install/install.js";
import { installManifests } from "../../lib/install/manifests.js";
import { ClusterUnreachableError } from "../../lib/install/preflight.js";
import { type ApiserverServiceType, checkInstallSettings } from "../../lib/install/settings.js";
import { uninstall } from "../../lib/install/uninstall.js";
import { meshWorkloadStatus } from "../../lib/install/workload-status.js";
import { apiErrorMessage } from "../../lib/k8s/client.js";
import { UsageError } from "../../lib/usage-error.js";
import { type OutputFormat, printJson, progress } from "../output.js";
import { kubeConfig } from "./clustermesh-actions.js";
import { renderWorkloadStatus, workloadsHealthy } from "./install-status-text.js";

interface Target {
  context: string;
  kubeconfig?: string;
}

export interface InstallFlags extends Target {
  clusterName?: string;
  clusterId?: number;
  encryption: EncryptionMode;
  ipsecBackend: IpsecBackendChoice;
  clustermeshBackendTtl: string;
  k8sServiceHost?: string;
  k8sServicePort: number;
  image?: string;
  apiserverServiceType: ApiserverServiceType;
  nodePort: number;
  /** commander's --no-hubble-relay */
  hubbleRelay: boolean;
  hubbleRelayNodePort: number;
  kvstoremeshEnabled: "true" | "false";
  caCert?: string;
  caKey?: string;
  dryRun?: boolean;
  wait?: boolean;
  waitDuration: number;
  force?: boolean;
}

/** The objects as one YAML stream, as `kubectl apply -f -` takes it. */
export function manifestsYaml(objects: object[]): string {
  return objects
    .map((object) => stringify(object, { lineWidth: 0, aliasDuplicateObjects: false }))
    .join("---\n");
}

export async function installAction(flags: InstallFlags): Promise<void> {
  if (Boolean(flags.caCert) !== Boolean(flags.caKey))
    throw new UsageError("--ca-cert and --ca-key go together");
  const partial = {
    clusterName: flags.clusterName,
    clusterId: flags.clusterId,
    encryption: flags.encryption,
    ipsecBackend: flags.ipsecBackend,
    clustermeshBackendTtl: flags.clustermeshBackendTtl,
    k8sServiceHost: flags.k8sServiceHost,
    k8sServicePort: flags.k8sServicePort,
    image: flags.image,
    apiserverServiceType: flags.apiserverServiceType,
    nodePort: flags.nodePort,
    hubbleRelay: flags.hubbleRelay,
    hubbleRelayNodePort: flags.hubbleRelayNodePort,
    kvstoremesh: flags.kvstoremeshEnabled !== "false",
  };
  if (flags.dryRun) {
    process.stdout.write(manifestsYaml(installManifests(checkInstallSettings(partial))));
    return;
  }
  // every flag judged before the cluster is reached (a placeholder host until the default is known)
  checkInstallSettings({ ...partial, k8sServiceHost: flags.k8sServiceHost ?? "127.0.0.1" });
  const kc = kubeConfig(flags.context, flags.kubeconfig);
  if (flags.k8sServiceHost === undefined) {
    let advertised: Awaited<ReturnType<typeof advertisedApiServer>>;
    try {
      advertised = await advertisedApiServer(kc);
    } catch (error) {
      throw new ClusterUnreachableError(
        `context ${flags.context}: cannot read the API server's address from the kubernetes Endpoints (${apiErrorMessage(error)}); check kubectl --context ${flags.context} get nodes, or give --k8s-service-host`,
        { cause: error },
      );
    }
    if (!advertised)
      throw new UsageError(
        "--k8s-service-host: the API server advertises no address in the kubernetes Endpoints; give the address nodes reach it at (kind: <cluster>-control-plane)",
      );
    partial.k8sServiceHost = advertised.host;
    partial.k8sServicePort = advertised.port;
    progress(
      `Kubernetes API for the mesh's pods: ${advertised.host}:${advertised.port} (the kubernetes Endpoints)`,
    );
  }
  const settings = checkInstallSettings(partial);
  const status = await install(kc, settings, {
    context: flags.context,
    kubeconfig: flags.kubeconfig,
    force: Boolean(flags.force),
    waitMs: flags.wait ? flags.waitDuration : undefined,
    ca:
      flags.caCert && flags.caKey
        ? { certPem: readFileSync(flags.caCert, "utf8"), keyPem: readFileSync(flags.caKey, "utf8") }
        : undefined,
    progress,
  });
  process.stdout.write(
    status
      ? `Installed: ${summary(status)}\n`
      : `Installed in ${flags.context} (meshctl status --context ${flags.context} shows the rollout)\n`,
  );
}

export async function uninstallAction(flags: Target & { deleteCrds?: boolean; waitDuration: number }) {
  const kc = kubeConfig(flags.context, flags.kubeconfig);
  const report = await uninstall(kc, {
    context: flags.context,
    deleteCrds: Boolean(flags.deleteCrds),
    timeoutMs: flags.waitDuration,
    progress,
  });
  process.stdout.write(
    report.deleted.length === 0
      ? `Nothing to uninstall in ${flags.context}\n`
      : `Uninstalled from ${flags.context}: ${report.deleted.length} object(s) deleted, ${report.left.length} left\n`,
  );
}

export async function statusAction(flags: Target & { output: OutputFormat }): Promise<void> {
  const kc = kubeConfig(flags.context, flags.kubeconfig);
  const status = await meshWorkloadStatus(kc);
  if (flags.output === "json") printJson(status);
  else process.stdout.write(renderWorkloadStatus(status));
  if (!workloadsHealthy(status)) process.exitCode = 1;
}
