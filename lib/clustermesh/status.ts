/**
 * What an agent reports about each remote cluster (in its status API) and how meshctl sums it up
 * across nodes, mirroring `cilium clustermesh status`.
 */

export interface RemoteClusterStatus {
  name: string;
  /** The etcd connection is up. */
  connected: boolean;
  /** Connected, configuration retrieved and every kind synced: the remote's state is in use. */
  ready: boolean;
  /** Human-readable state, e.g. "connected", "waiting for sync canaries", "unreachable for 42 s". */
  status: string;
  config: { required: boolean; retrieved: boolean; clusterId?: number; syncedCanaries?: boolean };
  synced: { nodes: boolean; services: boolean; identities: boolean; endpoints: boolean };
  numNodes: number;
  numSharedServices: number;
  numIdentities: number;
  numEndpoints: number;
  numFailures: number;
  lastFailure?: string;
  lastFailureAt?: string;
  /**
   * Remote entries refused since this agent started, by reason: running totals that only go up
   * (an entry refused, fixed and refused again counts twice). Validation reasons (not-json,
   * cluster-mismatch, …) and merge reasons (foreign-address, overlapping-cidr, node-ip-conflict,
   * unsupported-address) together.
   */
  rejectedTotal: Record<string, number>;
  /** Remote entries (or service backends) refused right now, by reason: goes down when fixed. */
  rejectedNow: Record<string, number>;
  /** Backends withdrawn after the remote stayed unreachable longer than the TTL. */
  backendsWithdrawn?: boolean;
}

export interface NodeMeshStatus {
  node: string;
  /** Undefined when the node's agent could not be asked. */
  remoteClusters?: RemoteClusterStatus[];
  error?: string;
}

export interface ConnectivitySummary {
  expectedClusters: string[];
  totalNodes: number;
  /** Nodes whose agent is ready for every expected cluster. */
  fullyConnected: number;
  connected: { min: number; avg: number; max: number };
  clusters: Record<string, { configured: number; connected: number }>;
  errors: { node: string; cluster?: string; message: string; hint?: string }[];
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
): ConnectivitySummary {
  const clusters: ConnectivitySummary["clusters"] = Object.fromEntries(
    expectedClusters.map((name) => [name, { configured: 0, connected: 0 }]),
  );
  const errors: ConnectivitySummary["errors"] = [];
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
      if (status.ready) {
        clusters[name].connected++;
        ready++;
      } else {
        errors.push({
          node: node.node,
          cluster: name,
          message: notReadyReason(status),
          hint: `meshctl agent status --node ${node.node}`,
        });
      }
    }
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
  };
}
