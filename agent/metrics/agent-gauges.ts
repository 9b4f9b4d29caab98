/** The agent's gauges, computed at scrape time from whatever part exists yet (0 before it does). */

import type { CurrentDatapathState } from "../../bpf/datapath/reconcile.js";
import { AGENT_METRICS } from "../../lib/api/metrics.js";
import type { MetricsRegistry } from "../../lib/metrics/registry.js";

export interface GaugeSources {
  ready: () => boolean;
  endpoints: () => number;
  /** Reads the BPF maps (throws when they cannot be read: the registry then renders no sample). */
  datapath: () => CurrentDatapathState | undefined;
  packetsByReason: () => Record<string, { packets: bigint }>;
  identities: () => number;
  /** Network policy drops per endpoint, direction and rule (reads cm_policy_drops). */
  policyDrops: () => ReadonlyArray<{ pod: string; direction: string; rule: string; packets: number }>;
}

/** Frontends = the services map's slot-0 entries (slots 1..n are the backends). */
export function frontendCount(current: CurrentDatapathState | undefined): number {
  return current ? current.services.filter(([key]) => key.backendSlot === 0).length : 0;
}

export function registerAgentGauges(metrics: MetricsRegistry, sources: GaugeSources): void {
  metrics.gauge(AGENT_METRICS.agentReady, "1 when the agent serves CNI ADDs", [], () => [
    { value: sources.ready() ? 1 : 0 },
  ]);
  metrics.gauge(AGENT_METRICS.agentEndpoints, "local pod endpoints", [], () => [
    { value: sources.endpoints() },
  ]);
  metrics.gauge(AGENT_METRICS.agentServices, "service frontends in the datapath", [], () => [
    { value: frontendCount(sources.datapath()) },
  ]);
  metrics.gauge(AGENT_METRICS.agentIpcacheEntries, "ipcache entries", [], () => [
    { value: sources.datapath()?.ipcache.length ?? 0 },
  ]);
  metrics.gauge(AGENT_METRICS.agentIdentities, "identities of this cluster known to the agent", [], () => [
    { value: sources.identities() },
  ]);
  metrics.collectedCounter(AGENT_METRICS.datapathPacketsTotal, "datapath packets by reason", ["reason"], () =>
    Object.entries(sources.packetsByReason()).map(([reason, value]) => ({
      labels: { reason },
      value: Number(value.packets),
    })),
  );
  metrics.collectedCounter(
    AGENT_METRICS.policyDropsTotal,
    "packets network policy dropped, by pod, direction and rule",
    ["pod", "direction", "rule"],
    () =>
      sources
        .policyDrops()
        .map(({ pod, direction, rule, packets }) => ({ labels: { pod, direction, rule }, value: packets })),
  );
}
