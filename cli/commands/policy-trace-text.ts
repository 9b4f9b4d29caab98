/** `meshctl policy trace`'s text output. Pure, so its wording is tested without a cluster. */
import type { TraceEndpoint, TraceResult, TraceStep } from "../../lib/policy/trace.js";

const describe = (side: TraceEndpoint, identity: number | undefined) =>
  side.type === "pod"
    ? `${side.name} (cluster ${side.cluster})`
    : `${side.ip} (${identity === 2 ? "world" : `CIDR identity ${identity} of a policy's block`})`;

function stepLine(step: TraceStep): string {
  if (!step.evaluated || !step.verdict) return `not evaluated: ${step.note}`;
  const { verdict } = step;
  if (verdict.reason === "not-enforced") return `allowed: no policy selects the pod for ${step.direction}`;
  if (verdict.reason === "default-deny")
    return `DENIED: policies select the pod for ${step.direction} and none allows this (default deny)`;
  return `${verdict.allowed ? "allowed" : "DENIED"} by ${step.rule}`;
}

export function renderTrace(input: {
  cluster: string;
  from: TraceEndpoint;
  to: TraceEndpoint;
  dport?: string;
  result: TraceResult;
}): string[] {
  const { result } = input;
  const lines = [
    `Cluster:  ${input.cluster}`,
    `From:     ${describe(input.from, result.fromIdentity)}`,
    `To:       ${describe(input.to, result.toIdentity)}`,
    `Port:     ${input.dport ?? "any (only rules that allow every port count; give --dport)"}`,
    `Egress:   ${stepLine(result.egress)}`,
    `Ingress:  ${stepLine(result.ingress)}`,
    `Verdict:  ${result.allowed ? "ALLOWED" : "DENIED"}`,
  ];
  for (const invalid of result.invalidPolicies)
    lines.push(`Invalid policy, not enforced: ${invalid.policy}: ${invalid.errors.join("; ")}`);
  for (const warning of result.warnings) lines.push(`Warning: ${warning.policy}: ${warning.warning}`);
  return lines;
}
