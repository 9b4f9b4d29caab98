/**
 * One endpoint's policy as the resolver has stated it so far (lib/policy/types.ts), folded from its
 * deltas. Pure.
 */
import {
  type EndpointPolicy,
  type EndpointPolicyDelta,
  type PolicyKey,
  type PolicyValue,
  policyKeyString,
} from "../../lib/policy/types.js";

export interface EndpointPolicyState {
  enforced: { ingress: boolean; egress: boolean };
  entries: ReadonlyMap<string, readonly [PolicyKey, PolicyValue]>;
}

export const UNENFORCED: EndpointPolicyState = {
  enforced: { ingress: false, egress: false },
  entries: new Map(),
};

export function stateOf(policy: Omit<EndpointPolicy, "endpoint">): EndpointPolicyState {
  return {
    enforced: { ...policy.enforced },
    entries: new Map(policy.entries.map((entry) => [policyKeyString(entry[0]), entry])),
  };
}

/** The state after a delta: deletes first, then upserts (a key in both ends up upserted). */
export function applyDelta(state: EndpointPolicyState, delta: EndpointPolicyDelta): EndpointPolicyState {
  const entries = new Map(state.entries);
  for (const key of delta.deletes) entries.delete(policyKeyString(key));
  for (const entry of delta.upserts) entries.set(policyKeyString(entry[0]), entry);
  return { enforced: delta.enforced ? { ...delta.enforced } : state.enforced, entries };
}

export function asPolicy(state: EndpointPolicyState): Omit<EndpointPolicy, "endpoint"> {
  return {
    enforced: state.enforced,
    entries: [...state.entries.values()] as Array<[PolicyKey, PolicyValue]>,
  };
}
