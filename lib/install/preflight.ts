/**
 * What `meshctl install` checks before it writes anything: the cluster answers, no other CNI or
 * kube-proxy is in charge of the nodes' networking (the mesh replaces both: two CNIs fight over pod
 * interfaces, kube-proxy's iptables rules and the mesh's socket LB both translate Service IPs), and
 * the cluster is not already in the mesh under another name or id.
 */
import { AppsV1Api, type KubeConfig, VersionApi } from "@kubernetes/client-node";
import { MESH_NAMESPACE } from "../api/rbac.js";
import { MeshObjects, parseConfigMapData } from "../clustermesh/resources.js";
import { apiErrorMessage, coreApi, readConfigMap } from "../k8s/client.js";
import { UsageError } from "../usage-error.js";
import { InstallNames } from "./names.js";
import type { InstallSettings } from "./settings.js";

export class ClusterUnreachableError extends UsageError {}
export class NetworkingInChargeError extends UsageError {}

/** DaemonSet name patterns of CNIs and Service proxies a cluster may already run (kube-system). */
const OTHERS: { pattern: RegExp; what: string }[] = [
  { pattern: /^kube-proxy$/, what: "kube-proxy (Service load balancing)" },
  { pattern: /^kindnet/, what: "kindnet (kind's default CNI)" },
  { pattern: /^cilium$/, what: "Cilium (CNI)" },
  { pattern: /^calico-node$/, what: "Calico (CNI)" },
  { pattern: /^kube-flannel|^flannel/, what: "Flannel (CNI)" },
  { pattern: /^weave-net$/, what: "Weave Net (CNI)" },
  { pattern: /^canal$/, what: "Canal (CNI)" },
  { pattern: /^antrea-agent$/, what: "Antrea (CNI)" },
  { pattern: /^kube-router$/, what: "kube-router (CNI)" },
];

export interface ClusterFacts {
  serverVersion: string;
  nodes: number;
  /** DaemonSets of others in charge, e.g. "kube-system/kube-proxy: kube-proxy (Service load balancing)". */
  othersInCharge: string[];
}

export async function clusterFacts(kc: KubeConfig, context: string): Promise<ClusterFacts> {
  let serverVersion: string;
  let nodes: number;
  try {
    serverVersion = (await kc.makeApiClient(VersionApi).getCode()).gitVersion;
    nodes = (await coreApi(kc).listNode()).items.length;
  } catch (error) {
    throw new ClusterUnreachableError(
      `context ${context}: cannot reach the Kubernetes API (${apiErrorMessage(error)}); check the context with kubectl --context ${context} get nodes`,
      { cause: error },
    );
  }
  const daemonSets = await kc.makeApiClient(AppsV1Api).listNamespacedDaemonSet({ namespace: MESH_NAMESPACE });
  const othersInCharge = daemonSets.items.flatMap((ds) => {
    const name = ds.metadata?.name ?? "";
    if (name === InstallNames.agentDaemonSet || name === InstallNames.cleanupDaemonSet) return [];
    const other = OTHERS.find((o) => o.pattern.test(name));
    return other ? [`DaemonSet ${MESH_NAMESPACE}/${name}: ${other.what}`] : [];
  });
  return { serverVersion, nodes, othersInCharge };
}

export function refuseOthers(facts: ClusterFacts, force: boolean): string | undefined {
  if (facts.othersInCharge.length === 0) return undefined;
  const list = facts.othersInCharge.join("; ");
  if (force) return `--force: installing although ${list} is present`;
  throw new NetworkingInChargeError(
    `another component is in charge of the cluster's networking: ${list}. The mesh is the cluster's CNI and Service load balancer; create the cluster without them (kind: disableDefaultCNI: true, kubeProxyMode: none, as kind-configs/) or pass --force`,
  );
}

/** The mesh identity the cluster already has, if another: it cannot change on a live cluster. */
export async function refuseOtherIdentity(kc: KubeConfig, settings: InstallSettings): Promise<void> {
  const existing = await readConfigMap(coreApi(kc), MeshObjects.config);
  if (!existing) return;
  const config = parseConfigMapData(existing.data, `ConfigMap ${MESH_NAMESPACE}/${MeshObjects.config}`);
  for (const [flag, was, now] of [
    ["--cluster-name", config.clusterName, settings.clusterName],
    ["--cluster-id", config.clusterId, settings.clusterId],
  ] as const) {
    if (was !== now)
      throw new UsageError(
        `${flag}: this cluster is already in the mesh as ${config.clusterName} (id ${config.clusterId}); it cannot change on a live cluster (meshctl uninstall first)`,
      );
  }
}
