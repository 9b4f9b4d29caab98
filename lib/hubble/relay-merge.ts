/**
 * How a relay answers a GetFlows without follow from its peers' answers: every peer returns up to
 * `number` flows of its own, and the relay keeps the last (or, with `first`, the first) `number`
 * flows overall, merged by time across nodes and clusters — `hubble observe --last 20` through the
 * relay shows 20 flows, not 20 per node. Upstream hubble-relay documents N per Hubble instance for
 * --first/--last (https://github.com/cilium/cilium/blob/v1.18.4/hubble/cmd/observe/flows.go); the
 * mesh's relay answers with N overall, which is what a user asking for "the last N" means.
 * meshctl observe merges the servers it asks (several clusters' relays, the lab's agents) the same
 * way. Responses that are not flows (a nested relay's NODE_UNAVAILABLE, lost events) are kept, in time
 * order, and not counted.
 */
import type { GetFlowsResponse } from "./client.js";
import { timestampToNs } from "./flow.js";
import type { FlowsRequestPlan } from "./request.js";

const at = (response: GetFlowsResponse): bigint => (response.time ? timestampToNs(response.time) : 0n);

/**
 * Sorted by time (stable: a peer's own order is kept for equal times), limited to plan.number
 * flows. responseOf: where an item keeps its response (meshctl observe pairs it with its source).
 */
export function mergeFlowResponses<T>(
  collected: readonly T[],
  plan: Pick<FlowsRequestPlan, "number" | "first">,
  responseOf: (item: T) => GetFlowsResponse,
): T[] {
  const sorted = [...collected].sort((a, b) => {
    const ta = at(responseOf(a));
    const tb = at(responseOf(b));
    return ta < tb ? -1 : ta > tb ? 1 : 0;
  });
  if (plan.number === undefined) return sorted;
  const flowIndexes = sorted.flatMap((item, index) => (responseOf(item).flow ? [index] : []));
  if (flowIndexes.length <= plan.number) return sorted;
  const kept = new Set(plan.first ? flowIndexes.slice(0, plan.number) : flowIndexes.slice(-plan.number));
  return sorted.filter((item, index) => !responseOf(item).flow || kept.has(index));
}
