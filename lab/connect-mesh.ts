import { connectClusters } from "../lib/clustermesh/connect.js";
import { type NodeMeshStatus, summarizeConnectivity } from "../lib/clustermesh/status.js";
import { errorChainSummary } from "../lib/error-chain.js";
import { kubeConfigFor } from "../lib/k8s/client.js";
import { agentStatus } from "./agent-socket.js";
import { componentKubeconfigPath, kubeContextName } from "./control-plane.js";
import type { LabPlan } from "./plan.js";
import type { LabJournal } from "./state.js";

/** What is still missing for a full mesh: one line per node and remote that is not ready or not programmed. */
export interface MeshProgress {
  /** Node × remote pairs ready with the remote's entries exactly in the node's BPF maps. */
  programmed: number;
  expected: number;
  pending: string[];
}

/**
 * Every node of every cluster against every other cluster of the lab: connected, synced, and the
 * remote's share of the node's BPF maps exactly what it published (the agents' own drift report,
 * as `meshctl clustermesh status` shows it).
 */
export async function meshProgress(plan: LabPlan): Promise<MeshProgress> {
  let programmed = 0;
  let expected = 0;
  const pending: string[] = [];
  await Promise.all(
    plan.clusters.map(async (cluster) => {
      const others = plan.clusters.filter((c) => c !== cluster).map((c) => c.name);
      const nodes = await Promise.all(
        cluster.nodes.map(async (node): Promise<NodeMeshStatus> => {
          try {
            const status = await agentStatus(plan.name, node.name);
            return { node: node.name, remoteClusters: status.clustermesh?.remoteClusters ?? [] };
          } catch (error) {
            return { node: node.name, error: errorChainSummary(error) };
          }
        }),
      );
      const summary = summarizeConnectivity(others, nodes);
      expected += others.length * cluster.nodes.length;
      const drifting = new Set(summary.drift.map((d) => `${d.node}/${d.cluster}`));
      for (const { node, cluster: remote } of summary.datapath)
        if (!drifting.has(`${node}/${remote}`)) programmed++;
      for (const error of summary.errors)
        pending.push(`${error.node}${error.cluster ? ` → ${error.cluster}` : ""}: ${error.message}`);
      for (const drift of summary.drift)
        pending.push(
          `${drift.node} → ${drift.cluster ?? "no cluster"}: BPF maps differ (missing ${drift.missing}, extra ${drift.extra}, different ${drift.different})`,
        );
    }),
  );
  return { programmed, expected, pending };
}

export class MeshNotProgrammedError extends Error {}

/**
 * `meshctl clustermesh connect --connection-mode mesh` across every cluster of the lab (one write
 * per cluster, lib/clustermesh/connect), then waits until every node has every other cluster
 * programmed. Returns the milliseconds from the connect to the last node programmed.
 */
export async function connectLabMesh(
  journal: LabJournal,
  plan: LabPlan,
  options: { timeoutMs: number; progress: (line: string) => void },
): Promise<{ connectMs: number; programmedMs: number }> {
  const contexts = new Map(
    plan.clusters.map((cluster) => [
      kubeContextName(plan, cluster.name),
      componentKubeconfigPath(journal, cluster.name, "meshctl"),
    ]),
  );
  const [source, ...destinations] = contexts.keys();
  const started = Date.now();
  await connectClusters((context) => kubeConfigFor(undefined, contexts.get(context)), {
    source,
    destinations,
    mode: "mesh",
    allowMismatchingCa: false,
    progress: options.progress,
  });
  const connectMs = Date.now() - started;
  const deadline = started + options.timeoutMs;
  let last: MeshProgress | undefined;
  let reported = -1;
  for (;;) {
    last = await meshProgress(plan);
    if (last.programmed !== reported) {
      reported = last.programmed;
      options.progress(`Mesh: ${last.programmed}/${last.expected} node × remote cluster pairs programmed`);
    }
    if (last.pending.length === 0 && last.programmed === last.expected)
      return { connectMs, programmedMs: Date.now() - started };
    if (Date.now() >= deadline) {
      const shown = last.pending.slice(0, 10);
      throw new MeshNotProgrammedError(
        `the mesh is not programmed ${options.timeoutMs / 1000} s after connect (${last.programmed}/${last.expected}); still pending: ${shown.join("; ")}${last.pending.length > shown.length ? `; … ${last.pending.length - shown.length} more` : ""}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
