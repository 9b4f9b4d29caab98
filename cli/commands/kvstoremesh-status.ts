/**
 * The first hop in KVStoreMesh mode: the clustermesh-apiserver ↔ each remote cluster, as its
 * /v1/cluster reports it (Cilium: `cilium clustermesh status` reads the kvstoremesh API the same
 * way), read through the Kubernetes API's pod proxy so it works wherever kubectl does.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { KVSTOREMESH_STATUS_PATH, type KvStoreMeshRemoteStatus } from "../../lib/api/kvstoremesh-status.js";
import { MESH_NAMESPACE } from "../../lib/api/rbac.js";
import { errorChainSummary } from "../../lib/error-chain.js";
import { APISERVER_HEALTH_PORT, InstallNames, selectorOf } from "../../lib/install/names.js";
import { coreApi } from "../../lib/k8s/client.js";

export type KvStoreMeshReport = { remotes: KvStoreMeshRemoteStatus[] } | { error: string };

export async function kvstoreMeshStatus(kc: KubeConfig): Promise<KvStoreMeshReport> {
  const core = coreApi(kc);
  try {
    const selector = Object.entries(selectorOf(InstallNames.apiserverDeployment))
      .map(([key, value]) => `${key}=${value}`)
      .join(",");
    const pods = (await core.listNamespacedPod({ namespace: MESH_NAMESPACE, labelSelector: selector })).items;
    const pod = pods.find((p) => p.status?.phase === "Running" && !p.metadata?.deletionTimestamp);
    if (!pod?.metadata?.name) return { error: "no running clustermesh-apiserver pod" };
    const body = await core.connectGetNamespacedPodProxyWithPath({
      name: `${pod.metadata.name}:${APISERVER_HEALTH_PORT}`,
      namespace: MESH_NAMESPACE,
      path: KVSTOREMESH_STATUS_PATH.replace(/^\//, ""),
    });
    const parsed: unknown = typeof body === "string" ? JSON.parse(body) : body;
    if (!Array.isArray(parsed)) return { error: `${KVSTOREMESH_STATUS_PATH}: not a list of remote clusters` };
    return { remotes: parsed as KvStoreMeshRemoteStatus[] };
  } catch (error) {
    return { error: `clustermesh-apiserver ${KVSTOREMESH_STATUS_PATH}: ${errorChainSummary(error)}` };
  }
}

/** Every remote the agents expect is cached and ready. */
export function kvstoreMeshHealthy(report: KvStoreMeshReport, expected: readonly string[]): boolean {
  if ("error" in report) return false;
  return expected.every((name) => report.remotes.some((r) => r.name === name && r.ready));
}

export function kvstoreMeshLines(report: KvStoreMeshReport): string[] {
  const lines = ["🗄️  KVStoreMesh (clustermesh-apiserver ↔ remote clusters, cached in the local etcd):"];
  if ("error" in report) return [...lines, `  ❌ ${report.error}`];
  if (report.remotes.length === 0) return [...lines, "  ⚠️  no remote cluster configured"];
  for (const r of report.remotes) {
    const rejected = Object.values(r["rejected-now"] ?? {}).reduce((a, b) => a + b, 0);
    lines.push(
      `  ${r.ready ? "✅" : "❌"} ${r.name}: ${r.status}; nodes ${r["num-nodes"]}, services ${r["num-shared-services"]}, identities ${r["num-identities"]}, endpoints ${r["num-endpoints"]}, failures ${r["num-failures"]}${rejected ? `, ${rejected} entries refused` : ""}`,
    );
    if (!r.ready && r["last-failure"]) lines.push(`     last failure: ${r["last-failure"]}`);
  }
  return lines;
}
