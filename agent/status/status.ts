/** The tables of the agent's status document (lib/api/agent-status.ts), from snapshots of its parts. Pure. */
import type { CurrentDatapathState } from "../../bpf/datapath/reconcile.js";
import type { AgentStatus } from "../../lib/api/agent-status.js";
import type { EndpointRecord } from "../endpoints/store.js";

const PROTO_NAMES: Record<number, string> = { 6: "TCP", 17: "UDP", 132: "SCTP" };

/** How the status names a service frontend, e.g. "10.96.0.10:53/UDP". */
export const frontendName = (key: { address: string; port: number; proto: number }) =>
  `${key.address}:${key.port}/${PROTO_NAMES[key.proto] ?? key.proto}`;

export function serviceTable(current: CurrentDatapathState | undefined): AgentStatus["services"] {
  if (!current) return [];
  const frontends = new Map<string, { key: string; slots: Map<number, number>; count: number }>();
  for (const [key, value] of current.services) {
    const id = frontendName(key);
    const entry = frontends.get(id) ?? { key: id, slots: new Map(), count: 0 };
    if (key.backendSlot === 0) entry.count = value.count;
    else entry.slots.set(key.backendSlot, value.backendId);
    frontends.set(id, entry);
  }
  return [...frontends.values()]
    .sort((a, b) => (a.key < b.key ? -1 : 1))
    .map((entry) => {
      const active: AgentStatus["services"][number]["backends"] = [];
      for (let slot = 1; slot <= entry.count; slot++) {
        const backendId = entry.slots.get(slot);
        const backend = backendId === undefined ? undefined : current.backends.get(backendId);
        if (backend)
          active.push({
            address: `${backend.address}:${backend.port}`,
            state: backend.state ? "terminating" : "active",
          });
      }
      return { frontend: entry.key, backends: active };
    });
}

export function endpointTable(records: readonly EndpointRecord[]): AgentStatus["endpoints"] {
  return records
    .map((r) => ({
      id: r.id,
      pod: `${r.podNamespace}/${r.podName}`,
      containerId: r.containerId,
      ip: r.ip,
      identity: r.identity,
      ifindex: r.ifindex,
      state: r.state,
    }))
    .sort((a, b) => (a.pod < b.pod ? -1 : 1));
}

export function ipcacheTable(current: CurrentDatapathState | undefined): AgentStatus["ipcache"] {
  if (!current) return [];
  return current.ipcache
    .map(([key, value]) => ({
      prefix: key.prefix,
      identity: value.identity,
      ...(value.tunnelEndpoint ? { tunnelEndpoint: value.tunnelEndpoint } : {}),
      ...(value.remoteCluster ? { remoteCluster: true } : {}),
    }))
    .sort((a, b) => (a.prefix < b.prefix ? -1 : 1));
}
