/**
 * Pure: what to write to the policy maps for one endpoint whose policy changed — the flattened
 * entries (bpf/datapath/policy-entries.ts), the key-level diff against what was written before,
 * the endpoint's new flags, and whether connections the endpoint's policy allowed so far must be
 * judged again (something was taken away or denied, or a direction became enforced).
 */
import { EndpointPolicyFlags, PolicyVerdictCode } from "../../bpf/datapath/policy-codecs.js";
import {
  diffPolicyEntries,
  type FlattenedPolicy,
  flattenEndpointPolicy,
  type PolicyMapEntries,
} from "../../bpf/datapath/policy-entries.js";
import type { PolicyRuleRef } from "../../lib/policy/types.js";
import { asPolicy, type EndpointPolicyState } from "./endpoint-state.js";

export interface EndpointPolicyPlan {
  flattened: FlattenedPolicy;
  upserts: ReturnType<typeof diffPolicyEntries>["upserts"];
  deletes: ReturnType<typeof diffPolicyEntries>["deletes"];
  /** the policy narrowed: connections of the endpoint allowed so far must be judged again */
  narrows: boolean;
}

export function planEndpointPolicy(
  previous: { entries: PolicyMapEntries; flags: number } | undefined,
  state: EndpointPolicyState,
  slot: number,
  ruleNumber: (rule: PolicyRuleRef) => number,
): EndpointPolicyPlan {
  const flattened = flattenEndpointPolicy(asPolicy(state), { policyId: slot, ruleNumber });
  const { upserts, deletes } = diffPolicyEntries(previous?.entries ?? new Map(), flattened.entries);
  const enforcedBits = EndpointPolicyFlags.ingressEnforced | EndpointPolicyFlags.egressEnforced;
  const newlyEnforced = (flattened.flags & enforcedBits & ~((previous?.flags ?? 0) & enforcedBits)) !== 0;
  const narrows =
    newlyEnforced ||
    deletes.length > 0 ||
    upserts.some(([, entry]) => entry.verdict === PolicyVerdictCode.deny);
  return { flattened, upserts, deletes, narrows };
}
