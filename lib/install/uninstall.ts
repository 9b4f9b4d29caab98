/**
 * `meshctl uninstall`: removes what install made, workloads first (so no agent recreates anything),
 * then cleans the nodes (./node-cleanup.ts), then the Service, ConfigMaps, certificate Secrets and
 * RBAC. It leaves, and says so, the CA Secret (the trust root other clusters of the mesh share, as
 * `clustermesh disable` leaves it) and the CRDs with the mesh's objects unless --delete-crds.
 * Uninstalling a cluster without the mesh removes nothing and says so.
 */
import {
  AppsV1Api,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  V1DeleteOptions,
} from "@kubernetes/client-node";
import { IPSEC_KEYS_SECRET } from "../api/encryption.js";
import { HubbleObjects } from "../api/hubble.js";
import { MESH_NAMESPACE } from "../api/rbac.js";
import { ENABLE_OBJECTS } from "../clustermesh/disable.js";
import { MeshObjects } from "../clustermesh/resources.js";
import { applyObjects, objectName } from "../k8s/apply.js";
import { coreApi, isNotFound, readSecret } from "../k8s/client.js";
import { waitFor } from "../process.js";
import { crdObjects, workloadObjects } from "./manifests.js";
import { InstallNames } from "./names.js";
import { nodeCleanupDaemonSet } from "./node-cleanup.js";
import { clusterFacts } from "./preflight.js";
import { checkInstallSettings, defaultImage } from "./settings.js";

export interface UninstallOptions {
  context: string;
  deleteCrds: boolean;
  /** How long the node cleanup may take on every node. */
  timeoutMs: number;
  progress: (line: string) => void;
}

export interface UninstallReport {
  deleted: string[];
  /** What uninstall left on purpose, with how to remove it. */
  left: string[];
  /** Nodes whose cleanup was not seen to finish. */
  nodeCleanup: { nodes: number; cleaned: number };
}

/** The objects install makes, named (settings do not change names). */
function installedObjects(): KubernetesObject[] {
  const placeholder = checkInstallSettings({ clusterName: "x", clusterId: 1, k8sServiceHost: "127.0.0.1" });
  // the Service is among the workload objects; enable's ConfigMap and Secrets are install's too
  const enableOnly = ENABLE_OBJECTS.filter((o) => o.kind !== "Service").map(
    (o): KubernetesObject => ({
      apiVersion: "v1",
      kind: o.kind,
      metadata: { name: o.name, namespace: MESH_NAMESPACE },
    }),
  );
  const hubble = [
    ["Secret", HubbleObjects.agentCert],
    ["Secret", HubbleObjects.relayCert],
    ["ConfigMap", HubbleObjects.relayPeers],
  ].map(
    ([kind, name]): KubernetesObject => ({
      apiVersion: "v1",
      kind,
      metadata: { name, namespace: MESH_NAMESPACE },
    }),
  );
  return [...workloadObjects(placeholder).reverse(), ...enableOnly, ...hubble];
}

/** Deletes and waits until it is gone; a workload's pods first (foreground), so its pods are gone too. */
async function deleteObject(api: KubernetesObjectApi, object: KubernetesObject): Promise<boolean> {
  const workload = object.kind === "DaemonSet" || object.kind === "Deployment";
  const policy = workload ? "Foreground" : "Background";
  const body = new V1DeleteOptions();
  body.propagationPolicy = policy;
  try {
    await api.delete(object, undefined, undefined, undefined, undefined, policy, body);
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
  await waitFor(
    `${objectName(object)} to be deleted`,
    async () => {
      try {
        await api.read(object as never);
        return false;
      } catch (error) {
        if (isNotFound(error)) return true;
        throw error;
      }
    },
    { timeoutMs: 120_000, intervalMs: 250 },
  );
  return true;
}

async function cleanNodes(kc: KubeConfig, image: string, options: UninstallOptions) {
  const cleanup = nodeCleanupDaemonSet(image);
  const apps = kc.makeApiClient(AppsV1Api);
  await applyObjects(kc, [cleanup]);
  let nodes = 0;
  let cleaned = 0;
  try {
    await waitFor(
      "the node cleanup on every node",
      async () => {
        const ds = await apps.readNamespacedDaemonSet({
          name: InstallNames.cleanupDaemonSet,
          namespace: MESH_NAMESPACE,
        });
        const observed = (ds.status?.observedGeneration ?? 0) >= (ds.metadata?.generation ?? 1);
        nodes = ds.status?.desiredNumberScheduled ?? 0;
        cleaned = ds.status?.numberReady ?? 0;
        return observed && cleaned === nodes;
      },
      { timeoutMs: options.timeoutMs, intervalMs: 500 },
    );
  } catch (error) {
    // not fatal (the cluster's objects still go): the counts say which nodes may keep leftovers
    if (!(error instanceof Error && error.message.startsWith("timed out"))) throw error;
    options.progress(
      `Node cleanup not seen to finish on ${nodes - cleaned} of ${nodes} node(s) within ${Math.round(options.timeoutMs / 1000)} s: those nodes may keep the agent's files, pins and links`,
    );
  } finally {
    await deleteObject(KubernetesObjectApi.makeApiClient(kc), cleanup);
  }
  return { nodes, cleaned };
}

export async function uninstall(kc: KubeConfig, options: UninstallOptions): Promise<UninstallReport> {
  const say = options.progress;
  const facts = await clusterFacts(kc, options.context);
  say(`Cluster reachable: Kubernetes ${facts.serverVersion}, ${facts.nodes} node(s)`);
  const api = KubernetesObjectApi.makeApiClient(kc);
  const apps = kc.makeApiClient(AppsV1Api);
  // the image the agents ran: the node cleanup runs the same
  let image = defaultImage();
  try {
    const ds = await apps.readNamespacedDaemonSet({
      name: InstallNames.agentDaemonSet,
      namespace: MESH_NAMESPACE,
    });
    image = ds.spec?.template.spec?.containers[0]?.image ?? image;
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  const objects = installedObjects();
  const workloads = objects.filter((o) => o.kind === "DaemonSet" || o.kind === "Deployment");
  const rest = objects.filter((o) => !workloads.includes(o));
  const deleted: string[] = [];
  for (const object of workloads) {
    if (await deleteObject(api, object)) {
      deleted.push(objectName(object));
      say(`Deleted ${objectName(object)} and its pods`);
    }
  }
  // a cluster that never had agents has nothing on its nodes either
  const hadAgents = deleted.some((name) => name.includes(InstallNames.agentDaemonSet));
  const nodeCleanup = hadAgents ? await cleanNodes(kc, image, options) : { nodes: 0, cleaned: 0 };
  if (hadAgents)
    say(
      `Node cleanup (CNI files, BPF pins, links) done on ${nodeCleanup.cleaned}/${nodeCleanup.nodes} node(s)`,
    );
  for (const object of rest) {
    if (await deleteObject(api, object)) deleted.push(objectName(object));
  }
  say(`Deleted ${deleted.length} object(s)`);
  const left: string[] = [];
  const core = coreApi(kc);
  try {
    await core.readNamespacedSecret({ name: MeshObjects.ca, namespace: MESH_NAMESPACE });
    left.push(
      `Secret ${MESH_NAMESPACE}/${MeshObjects.ca}: the CA the clusters of the mesh share (kubectl -n ${MESH_NAMESPACE} delete secret ${MeshObjects.ca})`,
    );
  } catch (error) {
    if (!isNotFound(error)) throw error;
  }
  if (await readSecret(core, IPSEC_KEYS_SECRET.name, IPSEC_KEYS_SECRET.namespace))
    left.push(
      `Secret ${IPSEC_KEYS_SECRET.namespace}/${IPSEC_KEYS_SECRET.name}: the IPsec key the clusters of the mesh share (kubectl -n ${IPSEC_KEYS_SECRET.namespace} delete secret ${IPSEC_KEYS_SECRET.name})`,
    );
  for (const crd of crdObjects()) {
    if (options.deleteCrds) {
      if (await deleteObject(api, crd)) deleted.push(objectName(crd));
    } else {
      try {
        await api.read(crd as never);
        left.push(`${objectName(crd)} and its objects (--delete-crds removes them)`);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
    }
  }
  if (deleted.length === 0) say("Nothing of the mesh was installed in this cluster");
  for (const line of left) say(`Left: ${line}`);
  return { deleted, left, nodeCleanup };
}
