/**
 * GetFlowsRequest semantics shared by the agent's observer and the relay: number with first/last,
 * follow, since/until and the filters (observer.proto). Without number, a request that does not
 * follow gets every stored flow; one that follows gets only new flows.
 */
import {
  type CompiledFilters,
  compileFlowFilters,
  FlowFilterError,
  type FlowFilterMessage,
} from "./filter.js";
import { type HubbleFlow, type Timestamp, timestampToNs } from "./flow.js";

export interface GetFlowsRequestMessage {
  number?: string | number;
  first?: boolean;
  follow?: boolean;
  whitelist?: FlowFilterMessage[];
  blacklist?: FlowFilterMessage[];
  since?: Timestamp;
  until?: Timestamp;
}

export interface FlowsRequestPlan {
  /** undefined: no limit */
  number?: number;
  first: boolean;
  follow: boolean;
  sinceNs?: bigint;
  untilNs?: bigint;
  filters: CompiledFilters;
}

function timestamp(field: string, value: Timestamp | undefined): bigint | undefined {
  if (!value) return undefined;
  try {
    return timestampToNs({ seconds: String(value.seconds ?? "0"), nanos: Number(value.nanos ?? 0) });
  } catch (error) {
    throw new FlowFilterError(field, `bad timestamp ${JSON.stringify(value)}`, { cause: error });
  }
}

export function planFlowsRequest(request: GetFlowsRequestMessage): FlowsRequestPlan {
  const number = request.number === undefined ? 0 : Number(request.number);
  if (!Number.isSafeInteger(number) || number < 0)
    throw new FlowFilterError("number", `${request.number} is not a count`);
  const plan: FlowsRequestPlan = {
    number: number > 0 ? number : undefined,
    first: request.first === true,
    follow: request.follow === true,
    sinceNs: timestamp("since", request.since),
    untilNs: timestamp("until", request.until),
    filters: compileFlowFilters(request.whitelist ?? [], request.blacklist ?? []),
  };
  if (plan.first && plan.follow) throw new FlowFilterError("first", "cannot be combined with follow");
  if (plan.sinceNs !== undefined && plan.untilNs !== undefined && plan.untilNs < plan.sinceNs)
    throw new FlowFilterError("until", "is before since");
  return plan;
}

export function inWindow(flow: HubbleFlow, plan: FlowsRequestPlan): boolean {
  if (plan.sinceNs === undefined && plan.untilNs === undefined) return true;
  const at = timestampToNs(flow.time);
  return (
    (plan.sinceNs === undefined || at >= plan.sinceNs) && (plan.untilNs === undefined || at <= plan.untilNs)
  );
}

/** The stored flows (oldest first) a request gets before any new one. */
export function selectHistory(stored: readonly HubbleFlow[], plan: FlowsRequestPlan): HubbleFlow[] {
  if (plan.follow && plan.number === undefined && plan.sinceNs === undefined) return [];
  const matching = stored.filter((flow) => inWindow(flow, plan) && plan.filters.matches(flow));
  if (plan.number === undefined) return matching;
  return plan.first ? matching.slice(0, plan.number) : matching.slice(-plan.number);
}
