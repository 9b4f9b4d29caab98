/**
 * What meshctl's agent and clustermesh commands learn from a lab when the node or cluster they are
 * given is one of a lab's: where a node's agent socket is, the cluster's name and id and the contexts
 * of the lab's other clusters. Besides lab.ts this is the
 * only file of cli/ that may import lab/ (test/import-rule.test.ts), and it does so lazily: a
 * command that meets no lab loads none of it.
 */
import { existsSync } from "node:fs";
import type { KubeConfig } from "@kubernetes/client-node";
import { UsageError } from "../../lib/usage-error.js";

/** A lab node's agent socket; a clear error when the lab, the node or the agent is not there. */
export async function labAgentSocket(labName: string, node: string): Promise<string> {
  const [{ LabJournal }, { agentSocketPath }] = await Promise.all([
    import("../../lab/state.js"),
    import("../../lab/agent-socket.js"),
  ]);
  const journal = LabJournal.open(labName);
  if (!journal) throw new UsageError(`no lab named "${labName}" (see meshctl lab status)`);
  const nodes = journal.snapshot.plan.clusters.flatMap((cluster) => cluster.nodes.map((n) => n.name));
  if (!nodes.includes(node)) {
    throw new UsageError(`lab "${labName}" has no node "${node}" (nodes: ${nodes.join(", ")})`);
  }
  const socket = agentSocketPath(labName, node);
  if (!existsSync(socket)) throw new Error(`the agent on ${node} is not running (no socket at ${socket})`);
  return socket;
}

/** The Hubble observer socket of every node of a lab (or of one), beside the agent's socket. */
export async function labHubbleSockets(
  labName: string,
  node?: string,
): Promise<{ node: string; socket: string }[]> {
  const [{ LabJournal }, { agentSocketPath }, { HUBBLE_SOCKET_NAME }, { dirname, join }] = await Promise.all([
    import("../../lab/state.js"),
    import("../../lab/agent-socket.js"),
    import("../../lib/hubble/client.js"),
    import("node:path"),
  ]);
  const journal = LabJournal.open(labName);
  if (!journal) throw new UsageError(`no lab named "${labName}" (see meshctl lab status)`);
  const nodes = journal.snapshot.plan.clusters.flatMap((cluster) => cluster.nodes.map((n) => n.name));
  if (node && !nodes.includes(node)) {
    throw new UsageError(`lab "${labName}" has no node "${node}" (nodes: ${nodes.join(", ")})`);
  }
  return (node ? [node] : nodes).map((name) => ({
    node: name,
    socket: join(dirname(agentSocketPath(labName, name)), HUBBLE_SOCKET_NAME),
  }));
}

export interface LabClusterFacts {
  lab: string;
  name: string;
  id: number;
  /** The kubeconfig context of each cluster of the lab (`lab up` merges one per cluster). */
  contexts: { cluster: string; context: string }[];
  agentSocket(node: string): string;
}

/** The lab cluster a kubeconfig points at (by API server URL), if it is one. */
export async function labClusterOf(kc: KubeConfig): Promise<LabClusterFacts | undefined> {
  const [{ findLabCluster }, { kubeContextName }, { agentSocketPath }] = await Promise.all([
    import("../../lab/clustermesh.js"),
    import("../../lab/control-plane.js"),
    import("../../lab/agent-socket.js"),
  ]);
  const lab = findLabCluster(kc);
  if (!lab) return undefined;
  return {
    lab: lab.plan.name,
    name: lab.cluster.name,
    id: lab.cluster.id,
    contexts: lab.plan.clusters.map((c) => ({ cluster: c.name, context: kubeContextName(lab.plan, c.name) })),
    agentSocket: (node) => agentSocketPath(lab.plan.name, node),
  };
}
