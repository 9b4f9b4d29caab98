/**
 * What an endpoint's policy entries decide for one packet, by the contract's lookup rules
 * (lib/policy/types.ts): entries for the peer's identity or any identity (0), the packet's protocol
 * or any (0), a port range holding the destination port or any port (0); a matching deny wins over
 * a matching allow; nothing matching denies when the direction is enforced and allows when it is
 * not. A direction that is not enforced still honours deny entries: a CiliumNetworkPolicy with
 * `enableDefaultDeny: {ingress: false}` and `ingressDeny` rules denies just those. The datapath implements the same lookup in BPF; `meshctl policy trace` and the tests use this.
 */
import type { EndpointPolicy, PolicyDirection, PolicyValue } from "./types.js";

export interface PacketQuery {
  direction: PolicyDirection;
  /** the peer's identity (source for ingress, destination for egress) */
  identity: number;
  protocol: number;
  port: number;
}

export interface Verdict {
  allowed: boolean;
  /** "rule": an entry decided (see `by`); "default-deny": enforced, no entry; "not-enforced": no policy selects the endpoint in that direction */
  reason: "rule" | "default-deny" | "not-enforced";
  by?: PolicyValue;
}

export function decide(policy: EndpointPolicy, query: PacketQuery): Verdict {
  const enforced = policy.enforced[query.direction];
  let allow: PolicyValue | undefined;
  for (const [key, value] of policy.entries) {
    if (key.direction !== query.direction) continue;
    if (key.identity !== 0 && key.identity !== query.identity) continue;
    if (key.protocol !== 0 && key.protocol !== query.protocol) continue;
    if (key.port !== 0 && (query.port < key.port || query.port > key.endPort)) continue;
    if (value.verdict === "deny") return { allowed: false, reason: "rule", by: value };
    allow ??= value;
  }
  if (!enforced) return { allowed: true, reason: "not-enforced" };
  return allow ? { allowed: true, reason: "rule", by: allow } : { allowed: false, reason: "default-deny" };
}
