/**
 * The contract between the policy resolver (lib/policy/, pure: policies + identities + local
 * endpoints → per-endpoint policy entries) and the datapath that enforces them (the agent's policy
 * applier writing the BPF policy map). Modelled on Cilium's policy map
 * (https://github.com/cilium/cilium/blob/main/pkg/maps/policymap/policymap.go): a key is
 * (peer identity, direction, protocol, destination port range); identity 0 and protocol 0 are
 * wildcards; a deny entry wins over an allow entry that matches the same packet.
 */

export type PolicyDirection = "ingress" | "egress";
export type PolicyVerdict = "allow" | "deny";
export type PolicyKind = "NetworkPolicy" | "CiliumNetworkPolicy" | "CiliumClusterwideNetworkPolicy";

/** IANA protocol numbers the policy language names; 0 = any protocol. */
export const POLICY_PROTOCOL = { any: 0, icmp: 1, tcp: 6, udp: 17, icmpv6: 58, sctp: 132 } as const;

/** Identity 0 in a key: any peer identity (Cilium's L4-only wildcard). */
export const ANY_IDENTITY = 0;

/** Which policy rule produced an entry: shown by `meshctl policy trace`, counted in drops. */
export interface PolicyRuleRef {
  kind: PolicyKind;
  /** absent for cluster-wide policies */
  namespace?: string;
  name: string;
  direction: PolicyDirection;
  /** index of the rule within the policy's ingress/egress (or ingressDeny/egressDeny) list */
  index: number;
  /** CiliumNetworkPolicy with `specs`: index of the spec holding the rule (absent for `spec`) */
  spec?: number;
}

export interface PolicyKey {
  direction: PolicyDirection;
  /** peer's numeric identity (source for ingress, destination for egress); 0 = any */
  identity: number;
  /** IANA protocol; 0 = any (then port and endPort are 0) */
  protocol: number;
  /** first destination port, host order; 0 = any port */
  port: number;
  /** last destination port of the range, inclusive; equals port for a single port, 0 with port 0 */
  endPort: number;
}

export interface PolicyValue {
  verdict: PolicyVerdict;
  rule: PolicyRuleRef;
}

/** Canonical string of a key: one entry per key per endpoint. */
export function policyKeyString(key: PolicyKey): string {
  return `${key.direction}/${key.identity}/${key.protocol}/${key.port}-${key.endPort}`;
}

/**
 * What changed for one local endpoint. `enforced` is present when whether a direction is enforced
 * changed (an endpoint no policy selects for a direction allows everything in that direction —
 * Kubernetes' default); upserts and deletes are key-level deltas, so a remote cluster adding 10k
 * identities touches only the entries of endpoints whose selectors match them. A direction that is
 * not enforced may still have deny entries (a CiliumNetworkPolicy with `enableDefaultDeny: false`
 * and deny rules): they deny, and nothing else is looked at (lib/policy/verdict.ts is the lookup).
 * The first delta of an endpoint always carries `enforced`; a deleted endpoint's last delta deletes
 * its keys and sets both directions to false.
 */
export interface EndpointPolicyDelta {
  /** the agent's endpoint id (EndpointRecord.id, the host-side interface name) */
  endpoint: string;
  enforced?: { ingress: boolean; egress: boolean };
  upserts: Array<[PolicyKey, PolicyValue]>;
  deletes: PolicyKey[];
}

/** An endpoint's whole policy (for status, restarts and full resyncs). */
export interface EndpointPolicy {
  endpoint: string;
  enforced: { ingress: boolean; egress: boolean };
  entries: Array<[PolicyKey, PolicyValue]>;
}

/**
 * CIDR selectors (NetworkPolicy ipBlock, fromCIDR/toCIDR/CIDRSet) become identities, as in Cilium:
 * the resolver allocates one local-scope identity per distinct prefix (its `except` prefixes
 * included), the agent puts each prefix into the ipcache with that identity (cluster id 0), and
 * policy entries name those identities. Longest-prefix match in the ipcache then gives an address
 * in an excepted range the excepted prefix's identity, which the rule does not allow.
 */
export const LOCAL_IDENTITY_SCOPE = 1 << 24;

export interface CidrIdentity {
  /** canonical prefix, e.g. "192.0.2.0/24" */
  prefix: string;
  identity: number;
}
