/** The agent's gauges, computed at scrape time from whatever part exists yet (0 before it does). */
import type { CurrentDatapathState } from "../../bpf/datapath/reconcile.js";
import type { MetricsRegistry } from "./registry.js";

export interface GaugeSources {
  ready: () => boolean;
  endpoints: () => number;
  /** Reads the BPF maps (throws when they cannot be read: the registry then renders no sample). */
  datapath: () => CurrentDatapathState | undefined;
  packetsByReason: () => Record<string, { packets: bigint }>;
  identities: () => number;
}

/** Frontends = the services map's slot-0 entries (slots 1..n are the backends). */
export function frontendCount(current: CurrentDatapathState | undefined): number {
  return current ? current.services.filter(([key]) => key.backendSlot === 0).length : 0;
}

export function registerAgentGauges(metrics: MetricsRegistry, sources: GaugeSources): void {
  metrics.gauge("clustermesh_agent_ready", "1 when the agent serves CNI ADDs", () => [
    { value: sources.ready() ? 1 : 0 },
  ]);
  metrics.gauge("clustermesh_agent_endpoints", "local pod endpoints", () => [{ value: sources.endpoints() }]);
  metrics.gauge("clustermesh_agent_services", "service frontends in the datapath", () => [
    { value: frontendCount(sources.datapath()) },
  ]);
  metrics.gauge("clustermesh_agent_ipcache_entries", "ipcache entries", () => [
    { value: sources.datapath()?.ipcache.length ?? 0 },
  ]);
  metrics.gauge("clustermesh_agent_identities", "identities of this cluster known to the agent", () => [
    { value: sources.identities() },
  ]);
  metrics.collectedCounter("clustermesh_datapath_packets_total", "datapath packets by reason", () =>
    Object.entries(sources.packetsByReason()).map(([reason, value]) => ({
      labels: { reason },
      value: Number(value.packets),
    })),
  );
}
