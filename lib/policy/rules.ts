/**
 * The parsed form of every policy kind: what the resolver works from. A policy is a list of subjects
 * (the endpoints it applies to, the directions it enforces for them) each with allow and deny rules;
 * a rule is a union of peers times a union of ports.
 */
import type { PolicyFieldError } from "./errors.js";
import type { LabelSelector } from "./selector.js";
import type { PolicyKind, PolicyRuleRef, PolicyVerdict } from "./types.js";

export type PeerSelector =
  /** identities whose labels match (pods of any cluster, reserved identities) */
  | { type: "labels"; selector: LabelSelector }
  /** CIDR identities inside `prefix` and outside every `except` (canonical prefixes) */
  | { type: "cidr"; prefix: string; except: string[] };

export type PortRule =
  /** port 0 = every port of the protocol (endPort 0 too); protocol 0 = any protocol and port */
  | { protocol: number; port: number; endPort: number }
  /** a named container port, resolved against the selected endpoint's ports (ingress only) */
  | { protocol: number; name: string };

export interface PolicyRule {
  ref: PolicyRuleRef;
  verdict: PolicyVerdict;
  /** null: every peer (key identity 0); an empty list selects no peer */
  peers: PeerSelector[] | null;
  /** null: every protocol and port */
  ports: PortRule[] | null;
}

export interface PolicySubject {
  /** the local endpoints this part of the policy applies to */
  selector: LabelSelector;
  /** directions in which the selected endpoints become default-deny */
  enforce: { ingress: boolean; egress: boolean };
  rules: PolicyRule[];
}

export interface ParsedPolicy {
  kind: PolicyKind;
  /** absent for cluster-wide policies */
  namespace?: string;
  name: string;
  subjects: PolicySubject[];
  /** accepted, but not enforced as written (e.g. an egress named port): shown in the status */
  warnings: PolicyFieldError[];
}

/** `Kind/namespace/name` (or `Kind/name`): one policy in the resolver and in messages. */
export function policyId(policy: { kind: PolicyKind; namespace?: string; name: string }): string {
  return policy.namespace
    ? `${policy.kind}/${policy.namespace}/${policy.name}`
    : `${policy.kind}/${policy.name}`;
}

/** `NetworkPolicy demo/allow-web ingress[0]`, `CiliumNetworkPolicy demo/x specs[1].egressDeny[0]`. */
export function ruleRefText(ref: PolicyRuleRef, verdict: PolicyVerdict = "allow"): string {
  const where = ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name;
  const spec = ref.spec !== undefined ? `specs[${ref.spec}].` : "";
  return `${ref.kind} ${where} ${spec}${ref.direction}${verdict === "deny" ? "Deny" : ""}[${ref.index}]`;
}

const EGRESS_NAMED_PORT_WARNING = /^named port "(.*)" in an egress rule: /;

/**
 * An egress rule's named port resolves against the container ports of the cluster's pods, which only
 * the agent knows (named-ports.ts): until it has, each is said to match nothing.
 */
export function egressNamedPortWarnings(
  rules: PolicyRule[],
  pathOf: (rule: PolicyRule) => string,
): PolicyFieldError[] {
  return rules.flatMap((rule) =>
    rule.ref.direction !== "egress"
      ? []
      : (rule.ports ?? []).flatMap((port) =>
          "name" in port
            ? [
                {
                  path: pathOf(rule),
                  message: `named port "${port.name}" in an egress rule: no container port of this cluster's pods has that name and protocol, so it matches no traffic`,
                },
              ]
            : [],
        ),
  );
}

/** The port name an egressNamedPortWarnings warning is about (undefined: another warning). */
export function egressNamedPortOfWarning(warning: PolicyFieldError): string | undefined {
  return EGRESS_NAMED_PORT_WARNING.exec(warning.message)?.[1];
}
