import type { KubeConfig } from "@kubernetes/client-node";
import type { MeshEntryKind } from "../../lib/api/agent-status.js";
import { getAgentStatus } from "../../lib/api/agent-status.js";
import { MESH_NAMESPACE } from "../../lib/api/rbac.js";
import { type ClusterAccess, readClusterAccess } from "../../lib/clustermesh/access.js";
import { connectCommand } from "../../lib/clustermesh/hints.js";
import { isRemoteClusterConfig } from "../../lib/clustermesh/remote-config.js";
import { MeshObjects } from "../../lib/clustermesh/resources.js";
import {
  type ConnectivitySummary,
  type NodeMeshStatus,
  summarizeConnectivity,
} from "../../lib/clustermesh/status.js";
import { errorChainSummary } from "../../lib/error-chain.js";
import { isReady, meshWorkloadStatus } from "../../lib/install/workload-status.js";
import { coreApi, decodeSecretData, readSecret } from "../../lib/k8s/client.js";
import { tableLines } from "../output.js";
import { agentStatusCommand } from "./agent.js";
import {
  type KvStoreMeshReport,
  kvstoreMeshHealthy,
  kvstoreMeshLines,
  kvstoreMeshStatus,
} from "./kvstoremesh-status.js";
import { type LabClusterFacts, labClusterOf } from "./lab-facts.js";

export interface MeshStatusReport {
  access_information: {
    cluster_name: string;
    cluster_id: string;
    service_type: string;
    endpoints: string[];
    max_connected_clusters: number;
    encryption: string;
  };
  apiserver: { ready: boolean | undefined; detail: string };
  connectivity: ConnectivitySummary;
  /** KVStoreMesh mode: the apiserver's hop to each remote (the agents' hop is `connectivity`). */
  kvstoremesh?: KvStoreMeshReport;
  /** What to run next when the cluster is connected to none: a command to copy. */
  connect_hint?: string;
}

/**
 * The connect command for a cluster that is connected to none: in a lab, to every other cluster of
 * the lab, ready to copy; elsewhere meshctl cannot know the other contexts and says what to fill in.
 */
function connectHint(
  lab: LabClusterFacts | undefined,
  context: string,
  kubeconfig: string | undefined,
): string {
  const others = lab ? lab.contexts.filter((c) => c.cluster !== lab.name).map((c) => c.context) : [];
  return others.length
    ? connectCommand(context, kubeconfig, others)
    : connectCommand(context, kubeconfig, ["<context of the other cluster>"]);
}

/** The clustermesh-apiserver Deployment's readiness (meshctl install's), as in any cluster. */
async function apiserverReadiness(kc: KubeConfig): Promise<MeshStatusReport["apiserver"]> {
  try {
    const { apiserver } = await meshWorkloadStatus(kc);
    if (!apiserver.present)
      return {
        ready: false,
        detail: `no Deployment ${apiserver.name} in ${MESH_NAMESPACE}: run meshctl install`,
      };
    return {
      ready: isReady(apiserver),
      detail: `Deployment ${apiserver.name}: ${apiserver.ready}/${apiserver.desired} ready`,
    };
  } catch (error) {
    return { ready: false, detail: `Deployment status: ${errorChainSummary(error)}` };
  }
}

async function nodeStatuses(lab: LabClusterFacts | undefined, nodes: string[]): Promise<NodeMeshStatus[]> {
  return Promise.all(
    nodes.map(async (node): Promise<NodeMeshStatus> => {
      if (!lab)
        return { node, error: "agent status API is only reachable in the lab (run meshctl on the node)" };
      try {
        const status = await getAgentStatus(lab.agentSocket(node));
        return {
          node,
          remoteClusters: status.clustermesh?.remoteClusters ?? [],
          unowned: status.clustermesh?.unowned,
        };
      } catch (error) {
        return { node, error: errorChainSummary(error) };
      }
    }),
  );
}

export async function clustermeshStatus(
  kc: KubeConfig,
  context: string,
  kubeconfig?: string,
): Promise<MeshStatusReport> {
  const core = coreApi(kc);
  const access: ClusterAccess = await readClusterAccess(core, context, kubeconfig);
  const remotes = await readSecret(core, MeshObjects.remotes);
  const expected = Object.keys(remotes?.data ?? {})
    .filter((key) => isRemoteClusterConfig(decodeSecretData(remotes, key) ?? ""))
    .sort();
  const nodes = (await core.listNode()).items.map((n) => n.metadata?.name ?? "").sort();
  const lab = await labClusterOf(kc);
  const [apiserver, statuses, kvstoremesh] = await Promise.all([
    apiserverReadiness(kc),
    nodeStatuses(lab, nodes),
    access.kvstoremesh ? kvstoreMeshStatus(kc) : undefined,
  ]);
  const connectivity = summarizeConnectivity(
    expected,
    statuses,
    lab ? (node) => agentStatusCommand(lab.lab, node) : undefined,
  );
  return {
    access_information: {
      cluster_name: access.clusterName,
      cluster_id: String(access.clusterId),
      service_type: access.serviceType,
      endpoints: access.endpoints,
      max_connected_clusters: access.maxConnectedClusters,
      encryption: access.encryption,
    },
    apiserver,
    connectivity,
    ...(kvstoremesh ? { kvstoremesh } : {}),
    ...(expected.length === 0 ? { connect_hint: connectHint(lab, context, kubeconfig) } : {}),
  };
}

/** Connected everywhere, and every node's BPF maps hold exactly what every remote published. */
export function isHealthy(report: MeshStatusReport): boolean {
  const c = report.connectivity;
  return (
    report.apiserver.ready !== false &&
    c.fullyConnected === c.totalNodes &&
    c.errors.length === 0 &&
    c.drift.length === 0 &&
    (report.kvstoremesh === undefined || kvstoreMeshHealthy(report.kvstoremesh, c.expectedClusters))
  );
}

/** One line per node and remote whose maps drift, with the sample: what --wait says when it gives up. */
export function driftLines(report: MeshStatusReport): string[] {
  const lines: string[] = [];
  for (const d of report.connectivity.drift) {
    lines.push(
      `  ❌ ${d.node}${d.cluster ? `, remote cluster ${d.cluster}` : ", entries of no connected cluster"}: ${d.missing} missing, ${d.extra} extra, ${d.different} different in the BPF maps`,
    );
    for (const entry of d.sample)
      lines.push(
        `       ${entry.problem} ${entry.kind} ${entry.entry}${entry.detail ? ` (${entry.detail})` : ""}`,
      );
  }
  return lines;
}

const KINDS: MeshEntryKind[] = ["nodes", "ipcache", "identities", "services", "backends"];

function ago(iso: string | undefined, now: number): string {
  if (!iso) return "-";
  return `${Math.max(0, Math.round((now - Date.parse(iso)) / 1000))}s ago`;
}

/** Per node and remote: published/programmed counts, the age of the last applied change, drift. */
function datapathLines(report: MeshStatusReport, now: number): string[] {
  const c = report.connectivity;
  if (c.datapath.length === 0) return [];
  const rows = c.datapath.map(({ node, cluster, datapath }) => [
    node,
    cluster,
    ...KINDS.map((kind) => `${datapath.published[kind]}/${datapath.programmed[kind]}`),
    ago(datapath.lastAppliedAt, now),
    datapath.drift.missing + datapath.drift.extra + datapath.drift.different === 0
      ? "none"
      : `${datapath.drift.missing} missing, ${datapath.drift.extra} extra, ${datapath.drift.different} different`,
  ]);
  const lines = ["", "🗺️  Datapath (published/programmed, read back from each node's BPF maps):"];
  lines.push(
    ...tableLines(
      ["  NODE", "REMOTE", ...KINDS.map((k) => k.toUpperCase()), "LAST CHANGE APPLIED", "DRIFT"],
      rows.map(([node, ...rest]) => [`  ${node}`, ...rest]),
    ),
  );
  if (c.drift.length === 0) lines.push("✅ Every node's BPF maps hold what every remote cluster published");
  else {
    lines.push(`❌ ${c.drift.length} node/remote pairs drift:`);
    lines.push(...driftLines(report));
  }
  return lines;
}

export function renderStatus(report: MeshStatusReport, now = Date.now()): string {
  const lines: string[] = [];
  const a = report.access_information;
  const mark = (ok: boolean | undefined) => (ok === undefined ? "ℹ️ " : ok ? "✅" : "❌");
  lines.push(`${mark(true)} Service "${MeshObjects.service}" of type "${a.service_type}" found`);
  lines.push(`${mark(true)} Cluster access information is available:`);
  for (const endpoint of a.endpoints) lines.push(`  - ${endpoint.replace(/^https:\/\//, "")}`);
  lines.push(
    `${mark(report.apiserver.ready)} clustermesh-apiserver ${report.apiserver.ready ? "is ready" : report.apiserver.ready === false ? "is not ready" : "readiness unknown"} (${report.apiserver.detail})`,
  );
  lines.push(`ℹ️  Cluster ${a.cluster_name} (id ${a.cluster_id}), encryption: ${a.encryption}`);
  lines.push("");
  const c = report.connectivity;
  if (c.expectedClusters.length === 0) {
    lines.push(`⚠️  Not connected to any cluster yet; connect with: ${report.connect_hint}`);
    return lines.join("\n");
  }
  const range = `[min:${c.connected.min} / avg:${c.connected.avg} / max:${c.connected.max}]`;
  if (c.fullyConnected === c.totalNodes)
    lines.push(`✅ All ${c.totalNodes} nodes are connected to all clusters ${range}`);
  else
    lines.push(
      `⚠️  ${c.totalNodes - c.fullyConnected}/${c.totalNodes} nodes are not connected to all clusters ${range}`,
    );
  lines.push("");
  if (report.kvstoremesh) lines.push(...kvstoreMeshLines(report.kvstoremesh), "");
  lines.push(
    report.kvstoremesh
      ? "🔌 Cluster Connections (agents ↔ the local KVStoreMesh cache):"
      : "🔌 Cluster Connections:",
  );
  for (const [name, counts] of Object.entries(c.clusters)) {
    lines.push(
      `  - ${name}: ${counts.configured}/${c.totalNodes} configured, ${counts.connected}/${c.totalNodes} connected`,
    );
  }
  lines.push(...datapathLines(report, now));
  if (c.errors.length) {
    lines.push("");
    lines.push(`❌ ${c.errors.length} Errors:`);
    for (const e of c.errors) {
      lines.push(
        `  ❌ ${e.node}${e.cluster ? ` is not connected to cluster ${e.cluster}` : ""}: ${e.message}`,
      );
      if (e.hint) lines.push(`     💡 Run '${e.hint}'`);
    }
  }
  return lines.join("\n");
}
