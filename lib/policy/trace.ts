/**
 * `meshctl policy trace`'s answer, computed from the objects alone (like `cilium policy trace`):
 * whether a connection from one pod (or address) to another would pass the source's egress policy
 * and the destination's ingress policy, and which rule decided. It runs the resolver the agents run
 * over the cluster's policies, so the answer is the one the datapath's entries give. Pure: the
 * command reads the objects from the Kubernetes API (cli/commands/policy-actions.ts).
 */
import { labelList, securityLabels } from "../identity/labels.js";
import { fieldErrorText } from "./errors.js";
import { parsePolicy } from "./parse.js";
import { PolicyResolver } from "./resolver.js";
import { policyId, ruleRefText } from "./rules.js";
import type { PolicyDirection } from "./types.js";
import { decide, type Verdict } from "./verdict.js";

export type TraceEndpoint =
  | {
      type: "pod";
      /** the cluster the pod runs in (the trace's cluster unless --from-cluster/--to-cluster) */
      cluster: string;
      namespace: string;
      /** shown in the answer: `ns/pod` or the labels given */
      name: string;
      labels: Record<string, string>;
      namespaceLabels?: Record<string, string>;
      serviceAccount?: string;
      namedPorts?: Array<{ name: string; port: number; protocol: string }>;
    }
  /** an address outside the mesh's pods: world, or the CIDR identity of the most specific policy block holding it */
  | { type: "address"; ip: string };

export interface TraceInput {
  clusterName: string;
  /** NetworkPolicy, CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy objects as the API returns them */
  policies: unknown[];
  from: TraceEndpoint;
  to: TraceEndpoint;
  protocol: number;
  /** destination port; 0 = any (then only entries for every port match) */
  port: number;
}

export interface TraceStep {
  direction: PolicyDirection;
  /** false when that side is not enforced by this cluster (an address, or a pod of another cluster) */
  evaluated: boolean;
  /** why it was not evaluated */
  note?: string;
  verdict?: Verdict;
  /** the deciding rule as text, e.g. `NetworkPolicy demo/web ingress[0]` */
  rule?: string;
}

export interface TraceResult {
  allowed: boolean;
  egress: TraceStep;
  ingress: TraceStep;
  /** an address side's identity: world (2), or the CIDR identity of the most specific policy block holding it */
  fromIdentity?: number;
  toIdentity?: number;
  /** policies that could not be parsed (not enforced by the agents either), with their field errors */
  invalidPolicies: Array<{ policy: string; errors: string[] }>;
  /** accepted policies' warnings (e.g. egress named ports) */
  warnings: Array<{ policy: string; warning: string }>;
}

// Pods get stand-in identities: the answer depends on their labels and cluster, not on the number.
const FROM_IDENTITY = 0x10000 - 2;
const TO_IDENTITY = 0x10000 - 1;
const FROM_ENDPOINT = "trace-from";
const TO_ENDPOINT = "trace-to";

function podLabels(pod: Extract<TraceEndpoint, { type: "pod" }>): string[] {
  return labelList(
    securityLabels({
      namespace: pod.namespace,
      podLabels: pod.labels,
      namespaceLabels: pod.namespaceLabels,
      serviceAccount: pod.serviceAccount,
      clusterName: pod.cluster,
    }),
  );
}

export function tracePolicy(input: TraceInput): TraceResult {
  const resolver = new PolicyResolver({ clusterName: input.clusterName });
  const invalidPolicies: TraceResult["invalidPolicies"] = [];
  const warnings: TraceResult["warnings"] = [];
  for (const object of input.policies) {
    const { policy, errors } = parsePolicy(object, { clusterName: input.clusterName });
    const meta = (object as { kind?: string; metadata?: { namespace?: string; name?: string } }) ?? {};
    const id = policyId({
      kind: (meta.kind ?? "NetworkPolicy") as never,
      namespace: meta.metadata?.namespace,
      name: meta.metadata?.name ?? "?",
    });
    if (!policy) {
      invalidPolicies.push({ policy: id, errors: errors.list.map(fieldErrorText) });
      continue;
    }
    for (const warning of policy.warnings) warnings.push({ policy: id, warning: fieldErrorText(warning) });
    resolver.upsertPolicy(policy);
  }
  const sides = [
    { side: input.from, identity: FROM_IDENTITY, endpoint: FROM_ENDPOINT },
    { side: input.to, identity: TO_IDENTITY, endpoint: TO_ENDPOINT },
  ];
  for (const { side, identity } of sides)
    if (side.type === "pod")
      resolver.upsertIdentities([{ id: identity, labels: podLabels(side), cluster: side.cluster }]);
  for (const { side, identity, endpoint } of sides)
    if (side.type === "pod" && side.cluster === input.clusterName)
      resolver.upsertEndpoint({
        id: endpoint,
        identity,
        labels: podLabels(side),
        namespace: side.namespace,
        namedPorts: side.namedPorts,
      });
  const identityOf = (side: TraceEndpoint, id: number) =>
    side.type === "pod" ? id : resolver.identityOfAddress(side.ip);
  const fromIdentity = identityOf(input.from, FROM_IDENTITY);
  const toIdentity = identityOf(input.to, TO_IDENTITY);

  const step = (
    direction: PolicyDirection,
    side: TraceEndpoint,
    endpoint: string,
    peer: number,
  ): TraceStep => {
    if (side.type === "address")
      return {
        direction,
        evaluated: false,
        note: `${side.ip} is not a pod: no ${direction} policy of this cluster applies`,
      };
    if (side.cluster !== input.clusterName)
      return {
        direction,
        evaluated: false,
        note: `the pod is in cluster ${side.cluster}: its ${direction} policy is that cluster's (trace there)`,
      };
    const policy = resolver.endpointPolicy(endpoint);
    if (!policy) throw new Error(`trace endpoint ${endpoint} missing`);
    const verdict = decide(policy, { direction, identity: peer, protocol: input.protocol, port: input.port });
    return {
      direction,
      evaluated: true,
      verdict,
      ...(verdict.by ? { rule: ruleRefText(verdict.by.rule, verdict.by.verdict) } : {}),
    };
  };
  const egress = step("egress", input.from, FROM_ENDPOINT, toIdentity);
  const ingress = step("ingress", input.to, TO_ENDPOINT, fromIdentity);
  const allowed = [egress, ingress].every((s) => !s.evaluated || s.verdict?.allowed);
  return {
    allowed,
    egress,
    ingress,
    ...(input.from.type === "address" ? { fromIdentity } : {}),
    ...(input.to.type === "address" ? { toIdentity } : {}),
    invalidPolicies,
    warnings,
  };
}
