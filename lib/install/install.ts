/**
 * `meshctl install`: checks, then applies the mesh to a cluster, one progress line per step.
 * Everything is server-side applied or create-or-replace, so a re-run (also after an interrupted
 * one) converges on the same objects and changes nothing when they are already there.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { HubbleObjects } from "../api/hubble.js";
import { enableClusterMesh } from "../clustermesh/enable.js";
import { applyObjects } from "../k8s/apply.js";
import { WaitAborted, waitFor } from "../process.js";
import { ensureHubbleCerts } from "./hubble-certs.js";
import { ensureIpsecKeys, ipsecKeysLine } from "./ipsec-keys.js";
import { crdObjects, workloadObjects } from "./manifests.js";
import { clusterFacts, refuseOtherIdentity, refuseOthers } from "./preflight.js";
import type { InstallSettings } from "./settings.js";
import {
  imagePullFailures,
  isReady,
  type MeshWorkloadStatus,
  meshWorkloadStatus,
  type PodState,
} from "./workload-status.js";

export interface InstallOptions {
  context: string;
  kubeconfig?: string;
  force: boolean;
  /** Wait this long for every agent and the clustermesh-apiserver to be ready; undefined: no wait. */
  waitMs?: number;
  /** A CA shared by the clusters of a mesh (as `clustermesh enable --ca-cert/--ca-key`). */
  ca?: { certPem: string; keyPem: string };
  progress: (line: string) => void;
}

/** A WaitAborted: waitFor retries a failing probe until its deadline, but no retry pulls an image. */
export class ImagePullError extends WaitAborted {}

/** kind names its contexts `kind-<cluster>`: the load command can then be given in full. */
export function imageLoadHint(image: string, context: string): string {
  const kindCluster = context.startsWith("kind-") ? context.slice("kind-".length) : "<kind cluster>";
  return `load it onto the nodes: kind load image-archive <archive from npm run image> --name ${kindCluster} (or docker build -f image/Dockerfile -t ${image} . && kind load docker-image ${image} --name ${kindCluster}), or push it to a registry the nodes reach and pass --image`;
}

function pullFailureMessage(failures: PodState[], context: string): string {
  const pods = failures.map((p) => `${p.name}${p.node ? ` on ${p.node}` : ""}: ${p.waiting}`).join(", ");
  const image = failures[0]?.image ?? "the image";
  return `the nodes cannot pull ${image} (${pods}); ${imageLoadHint(image, context)}`;
}

export function summary(status: MeshWorkloadStatus): string {
  const { agent, apiserver } = status;
  return `agents ${agent.ready}/${agent.desired} ready (DaemonSet ${agent.name}), clustermesh-apiserver ${apiserver.ready}/${apiserver.desired} ready (Deployment ${apiserver.name}), image ${agent.image ?? apiserver.image}`;
}

/** Waits until every agent and the clustermesh-apiserver are ready; fails early on an image that cannot be pulled. */
export async function waitForMesh(
  kc: KubeConfig,
  context: string,
  timeoutMs: number,
  progress: (line: string) => void,
): Promise<MeshWorkloadStatus> {
  let last: MeshWorkloadStatus | undefined;
  try {
    return await waitFor(
      "every agent and the clustermesh-apiserver to be ready",
      async () => {
        last = await meshWorkloadStatus(kc);
        const failures = imagePullFailures(last);
        if (failures.length > 0) throw new ImagePullError(pullFailureMessage(failures, context));
        return isReady(last.agent) && isReady(last.apiserver) ? last : undefined;
      },
      { timeoutMs, intervalMs: 1_000 },
    );
  } catch (error) {
    if (error instanceof ImagePullError) throw error;
    throw new Error(
      `not ready after ${Math.round(timeoutMs / 1000)} s: ${last ? summary(last) : "no status"}`,
      {
        cause: error,
      },
    );
  } finally {
    if (last) progress(`Status: ${summary(last)}`);
  }
}

export async function install(
  kc: KubeConfig,
  settings: InstallSettings,
  options: InstallOptions,
): Promise<MeshWorkloadStatus | undefined> {
  const say = options.progress;
  const facts = await clusterFacts(kc, options.context);
  say(`Cluster reachable: Kubernetes ${facts.serverVersion}, ${facts.nodes} node(s)`);
  const forced = refuseOthers(facts, options.force);
  say(forced ?? "No other CNI or kube-proxy in kube-system");
  await refuseOtherIdentity(kc, settings);

  const crds = crdObjects();
  await applyObjects(kc, crds);
  say(`CRDs applied: ${crds.map((c) => c.metadata?.name).join(", ")}`);
  // the CA, the certificate Secrets and the clustermesh-config ConfigMap: what enable makes, same code
  const enabled = await enableClusterMesh(kc, {
    context: options.context,
    kubeconfig: options.kubeconfig,
    clusterName: settings.clusterName,
    clusterId: settings.clusterId,
    encryption: settings.encryption,
    kvstoremesh: settings.kvstoremesh,
    ca: options.ca,
    nodePort: settings.nodePort,
    progress: say,
  });
  if (settings.hubbleRelay) {
    const issued = await ensureHubbleCerts(kc, enabled.ca, settings.clusterName);
    say(
      `Hubble certificates in kube-system: ${HubbleObjects.agentCert}, ${HubbleObjects.relayCert}${issued.length === 0 ? " (kept)" : ""}`,
    );
  }
  if (settings.encryption === "ipsec") say(ipsecKeysLine(await ensureIpsecKeys(kc), options.context));
  const objects = workloadObjects(settings);
  await applyObjects(kc, objects);
  say(
    `Applied ${objects.length} objects: ServiceAccounts and RBAC, ConfigMaps, Service clustermesh-apiserver (${settings.apiserverServiceType})${settings.hubbleRelay ? `, Services ${HubbleObjects.relayService} and ${HubbleObjects.relayMeshService}` : ""}, DaemonSet clustermesh-agent, Deployment clustermesh-apiserver (image ${settings.image})`,
  );
  if (options.waitMs === undefined) return undefined;
  say(`Waiting up to ${Math.round(options.waitMs / 1000)} s for the agents and the clustermesh-apiserver`);
  return await waitForMesh(kc, options.context, options.waitMs, say);
}
