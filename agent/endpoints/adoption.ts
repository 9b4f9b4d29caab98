/**
 * Restart adoption of the endpoints a previous run left, in two halves around the caches' sync:
 * re-attach every restored endpoint at once (its pod keeps forwarding; the new link replaces the
 * pinned one in place), and only once the caches are complete remove what is stale: endpoints of
 * deleted pods and those left broken, host links without a record, pinned links without an endpoint.
 */
import type { Logger } from "../../lib/log.js";
import type { EndpointManager } from "./manager.js";
import type { EndpointRecord } from "./store.js";

/** The datapath as adoption uses it (agent/datapath implements it). */
export interface AdoptingDatapath {
  attach(record: EndpointRecord, policyFlags: number): Promise<void>;
  /** Unpins endpoint links whose endpoint is not in keep; returns their endpoint ids. */
  removeStaleLinks(keep: ReadonlySet<string>): string[];
}

/** Pure: the restored endpoints to attach again (the broken ones are torn down later). */
export function endpointsToReattach(
  restored: readonly EndpointRecord[],
  broken: readonly EndpointRecord[],
): EndpointRecord[] {
  const brokenIds = new Set(broken.map((r) => r.id));
  return restored.filter((record) => !brokenIds.has(record.id));
}

export async function reattachEndpoints(
  endpoints: EndpointManager,
  datapath: AdoptingDatapath,
  broken: readonly EndpointRecord[],
  /** the flags the previous run wrote (the policy controller adopted them): enforcement never lapses */
  policyFlags: (endpoint: string) => number,
): Promise<void> {
  // one after another: the kernel serialises a device's attaches anyway
  for (const record of endpointsToReattach(endpoints.list(), broken))
    await datapath.attach(record, policyFlags(record.id));
}

export async function removeLeftovers(
  endpoints: EndpointManager,
  datapath: AdoptingDatapath,
  podGone: (record: EndpointRecord) => Promise<boolean>,
  broken: EndpointRecord[],
  log: Logger,
): Promise<void> {
  await endpoints.removeStale(podGone, broken);
  for (const link of await endpoints.orphanLinks()) {
    log.info({ link }, "removing an endpoint link without a record");
    await endpoints.removeOrphanLink(link);
  }
  const staleLinks = datapath.removeStaleLinks(new Set(endpoints.list().map((r) => r.id)));
  if (staleLinks.length > 0) log.info({ endpoints: staleLinks }, "unpinned links of removed endpoints");
}
