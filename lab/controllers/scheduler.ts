import type {
  V1Node,
  V1NodeSelectorRequirement,
  V1NodeSelectorTerm,
  V1Pod,
  V1Taint,
  V1Toleration,
} from "@kubernetes/client-node";
import { isNodeReady, isPodFinished, isPodTerminating } from "./objects.js";

/**
 * The lab's scheduler decisions: which pending pod goes to which node. Filtering follows
 * kube-scheduler's default plugins that matter in a lab (NodeReady, NodeUnschedulable,
 * NodeSelector + required node affinity, TaintToleration); scoring only spreads pods across nodes.
 */

export const DEFAULT_SCHEDULER_NAME = "default-scheduler";

export interface Binding {
  namespace: string;
  pod: string;
  node: string;
}

export interface Unschedulable {
  namespace: string;
  pod: string;
  message: string;
}

export interface SchedulePlan {
  bindings: Binding[];
  unschedulable: Unschedulable[];
}

export function needsScheduling(pod: V1Pod): boolean {
  const schedulerName = pod.spec?.schedulerName ?? DEFAULT_SCHEDULER_NAME;
  return (
    !pod.spec?.nodeName &&
    schedulerName === DEFAULT_SCHEDULER_NAME &&
    !isPodTerminating(pod) &&
    !isPodFinished(pod)
  );
}

export function tolerates(tolerations: V1Toleration[] | undefined, taint: V1Taint): boolean {
  return (tolerations ?? []).some((toleration) => {
    if (toleration.effect && toleration.effect !== taint.effect) return false;
    if (toleration.operator === "Exists") return !toleration.key || toleration.key === taint.key;
    return toleration.key === taint.key && (toleration.value ?? "") === (taint.value ?? "");
  });
}

function requirementMatches(requirement: V1NodeSelectorRequirement, labels: Record<string, string>): boolean {
  const value = labels[requirement.key];
  switch (requirement.operator) {
    case "In":
      return value !== undefined && (requirement.values ?? []).includes(value);
    case "NotIn":
      return value === undefined || !(requirement.values ?? []).includes(value);
    case "Exists":
      return value !== undefined;
    case "DoesNotExist":
      return value === undefined;
    case "Gt":
    case "Lt": {
      const limit = Number((requirement.values ?? [])[0]);
      const actual = Number(value);
      if (value === undefined || Number.isNaN(limit) || Number.isNaN(actual)) return false;
      return requirement.operator === "Gt" ? actual > limit : actual < limit;
    }
    default:
      return false;
  }
}

function termMatches(term: V1NodeSelectorTerm, node: V1Node): boolean {
  const labels = node.metadata?.labels ?? {};
  const byLabel = (term.matchExpressions ?? []).every((r) => requirementMatches(r, labels));
  const fields: Record<string, string> = { "metadata.name": node.metadata?.name ?? "" };
  const byField = (term.matchFields ?? []).every((r) => requirementMatches(r, fields));
  return byLabel && byField;
}

/** Why the pod cannot run on this node, or undefined when it can. */
export function nodeRejection(pod: V1Pod, node: V1Node): string | undefined {
  if (!isNodeReady(node)) return "node(s) were not ready";
  if (node.spec?.unschedulable) return "node(s) were unschedulable";
  const labels = node.metadata?.labels ?? {};
  const selector = pod.spec?.nodeSelector ?? {};
  if (!Object.entries(selector).every(([key, value]) => labels[key] === value)) {
    return "node(s) didn't match Pod's node affinity/selector";
  }
  const required = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
  if (required && !required.nodeSelectorTerms.some((term) => termMatches(term, node))) {
    return "node(s) didn't match Pod's node affinity/selector";
  }
  const blocking = (node.spec?.taints ?? []).find(
    (taint) =>
      (taint.effect === "NoSchedule" || taint.effect === "NoExecute") &&
      !tolerates(pod.spec?.tolerations, taint),
  );
  if (blocking) {
    return `node(s) had untolerated taint {${blocking.key}${blocking.value ? `: ${blocking.value}` : ""}}`;
  }
  return undefined;
}

/**
 * Binds every pod that needs scheduling to the feasible node with the fewest pods (counting the
 * bindings made in this same pass), ties broken by node name so the result is deterministic.
 */
export function schedule(pods: readonly V1Pod[], nodes: readonly V1Node[]): SchedulePlan {
  const load = new Map<string, number>();
  for (const node of nodes) load.set(node.metadata?.name ?? "", 0);
  for (const pod of pods) {
    const nodeName = pod.spec?.nodeName;
    if (nodeName && load.has(nodeName) && !isPodFinished(pod))
      load.set(nodeName, (load.get(nodeName) ?? 0) + 1);
  }
  const pending = pods
    .filter(needsScheduling)
    .sort((a, b) =>
      `${a.metadata?.creationTimestamp ?? ""}/${a.metadata?.namespace}/${a.metadata?.name}`.localeCompare(
        `${b.metadata?.creationTimestamp ?? ""}/${b.metadata?.namespace}/${b.metadata?.name}`,
      ),
    );
  const plan: SchedulePlan = { bindings: [], unschedulable: [] };
  for (const pod of pending) {
    const reasons = new Map<string, number>();
    const feasible: string[] = [];
    for (const node of nodes) {
      const rejection = nodeRejection(pod, node);
      if (rejection) reasons.set(rejection, (reasons.get(rejection) ?? 0) + 1);
      else feasible.push(node.metadata?.name ?? "");
    }
    const namespace = pod.metadata?.namespace ?? "default";
    const name = pod.metadata?.name ?? "";
    if (feasible.length === 0) {
      const detail = [...reasons].map(([reason, count]) => `${count} ${reason}`).join(", ");
      plan.unschedulable.push({
        namespace,
        pod: name,
        message: `0/${nodes.length} nodes are available${detail ? `: ${detail}` : ""}.`,
      });
      continue;
    }
    feasible.sort((a, b) => (load.get(a) ?? 0) - (load.get(b) ?? 0) || a.localeCompare(b));
    const chosen = feasible[0];
    load.set(chosen, (load.get(chosen) ?? 0) + 1);
    plan.bindings.push({ namespace, pod: name, node: chosen });
  }
  return plan;
}
