/**
 * What an agent reports about each remote cluster (in its status API) and how meshctl sums it up
 * across nodes, mirroring `cilium clustermesh status`.
 */
import type {
  AgentStatus,
  DatapathDriftEntry,
  RemoteClusterStatus,
  RemoteDatapathStatus,
} from "../api/agent-status.js";

export interface NodeMeshStatus {
  node: string;
  /** Undefined when the node's agent could not be asked. */
  remoteClusters?: RemoteClusterStatus[];
  /** Remote-flagged ipcache entries of no connected cluster in the node's maps. */
  unowned?: AgentStatus["clustermesh"]["unowned"];
  error?: string;
}

/** One node's maps do not hold exactly what one remote cluster published (cluster absent: unowned entries). */
export interface NodeDrift {
  node: string;
  cluster?: string;
  missing: number;
  extra: number;
  different: number;
  sample: DatapathDriftEntry[];
}

/** Whether a remote's share of a node's datapath is exactly what it published. */
export function inSync(datapath: Pick<RemoteDatapathStatus, "drift">): boolean {
  const { missing, extra, different } = datapath.drift;
  return missing === 0 && extra === 0 && different === 0;
}

export interface ConnectivitySummary {
  expectedClusters: string[];
  totalNodes: number;
  /** Nodes whose agent is ready for every expected cluster. */
  fullyConnected: number;
  connected: { min: number; avg: number; max: number };
  clusters: Record<string, { configured: number; connected: number }>;
  errors: { node: string; cluster?: string; message: string; hint?: string }[];
  /** Per node and remote cluster: published versus programmed in the node's BPF maps. */
  datapath: { node: string; cluster: string; datapath: RemoteDatapathStatus }[];
  /** Where a node's BPF maps differ from what was published (empty: no drift anywhere). */
  drift: NodeDrift[];
}

function notReadyReason(status: RemoteClusterStatus): string {
  if (!status.connected)
    return status.lastFailure ? `not connected: ${status.lastFailure}` : `not connected: ${status.status}`;
  if (!status.config.retrieved) {
    return status.config.required
      ? "remote cluster configuration required but not found"
      : "remote cluster configuration retrieval status unknown";
  }
  const pending = Object.entries(status.synced)
    .filter(([, done]) => !done)
    .map(([kind]) => kind);
  if (pending.length) return `synchronization in progress for ${pending.join(", ")}`;
  return status.status;
}

/** Sums per-node agent reports against the clusters this cluster is configured to connect to. Pure. */
export function summarizeConnectivity(
  expectedClusters: string[],
  nodes: NodeMeshStatus[],
  /** The command that shows a node's agent status where this runs (none: no hint is printed). */
  agentStatusCommand: (node: string) => string | undefined = () => undefined,
): ConnectivitySummary {
  const clusters: ConnectivitySummary["clusters"] = Object.fromEntries(
    expectedClusters.map((name) => [name, { configured: 0, connected: 0 }]),
  );
  const errors: ConnectivitySummary["errors"] = [];
  const datapath: ConnectivitySummary["datapath"] = [];
  const drift: NodeDrift[] = [];
  const perNode: number[] = [];
  let fullyConnected = 0;
  for (const node of nodes) {
    if (!node.remoteClusters) {
      errors.push({ node: node.node, message: `agent status unavailable: ${node.error ?? "no answer"}` });
      perNode.push(0);
      continue;
    }
    let ready = 0;
    for (const name of expectedClusters) {
      const status = node.remoteClusters.find((r) => r.name === name);
      if (!status) {
        errors.push({ node: node.node, cluster: name, message: "not configured on this node's agent yet" });
        continue;
      }
      clusters[name].configured++;
      if (status.datapath) {
        datapath.push({ node: node.node, cluster: name, datapath: status.datapath });
        if (!inSync(status.datapath))
          drift.push({ node: node.node, cluster: name, ...status.datapath.drift });
      } else if (status.ready) {
        errors.push({
          node: node.node,
          cluster: name,
          message:
            "connected, but the agent did not report its BPF maps (datapath not loaded or not readable)",
          hint: agentStatusCommand(node.node),
        });
      }
      if (status.ready) {
        clusters[name].connected++;
        ready++;
      } else {
        errors.push({
          node: node.node,
          cluster: name,
          message: notReadyReason(status),
          hint: agentStatusCommand(node.node),
        });
      }
    }
    if (node.unowned?.count)
      drift.push({
        node: node.node,
        missing: 0,
        extra: node.unowned.count,
        different: 0,
        sample: node.unowned.sample,
      });
    if (ready === expectedClusters.length) fullyConnected++;
    perNode.push(ready);
  }
  const sum = perNode.reduce((a, b) => a + b, 0);
  return {
    expectedClusters,
    totalNodes: nodes.length,
    fullyConnected,
    connected: {
      min: perNode.length ? Math.min(...perNode) : 0,
      avg: perNode.length ? Number((sum / perNode.length).toFixed(1)) : 0,
      max: perNode.length ? Math.max(...perNode) : 0,
    },
    clusters,
    errors,
    datapath,
    drift,
  };
}
