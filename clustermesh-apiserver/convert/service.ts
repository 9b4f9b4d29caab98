/**
 * Service + its EndpointSlices → ClusterService (Cilium's service_sync.go). Pure: returns undefined
 * when the service must not be in the kvstore (not global, not shared, local namespace).
 */
import type { V1EndpointSlice, V1Namespace, V1Service } from "@kubernetes/client-node";
import { isGlobalNamespace, isSharedService, serviceNameOf } from "../../lib/api/service-annotations.js";
import type { ClusterService, L4Protocol, PortConfiguration } from "../../lib/kvstore/values/service.js";

export const HEADLESS_LABEL = "service.kubernetes.io/headless";

/** This cluster, as it stamps what its clustermesh-apiserver publishes. */
export interface PublishingCluster {
  name: string;
  id: number;
}

const protocol = (p: string | undefined): L4Protocol => (p === "UDP" ? "UDP" : p === "SCTP" ? "SCTP" : "TCP");

function isHeadless(service: V1Service): boolean {
  return service.spec?.clusterIP === "None" || service.metadata?.labels?.[HEADLESS_LABEL] !== undefined;
}

export function clusterServiceFor(
  cluster: PublishingCluster,
  service: V1Service,
  slices: readonly V1EndpointSlice[],
  namespace: V1Namespace | undefined,
): ClusterService | undefined {
  if (!isSharedService(service) || !isGlobalNamespace(namespace)) return undefined;
  const frontends: Record<string, PortConfiguration> = {};
  if (!isHeadless(service)) {
    const ports: PortConfiguration = {};
    for (const port of service.spec?.ports ?? []) {
      ports[port.name ?? ""] = { Protocol: protocol(port.protocol), Port: port.port };
    }
    const clusterIps = service.spec?.clusterIPs ?? (service.spec?.clusterIP ? [service.spec.clusterIP] : []);
    for (const ip of clusterIps) if (ip && ip !== "None") frontends[ip] = { ...ports };
  }
  const backends: Record<string, PortConfiguration> = {};
  const hostnames: Record<string, string> = {};
  const zones: NonNullable<ClusterService["zones"]> = {};
  const name = service.metadata?.name ?? "";
  for (const slice of slices) {
    if (serviceNameOf(slice) !== name) continue;
    if (slice.addressType === "FQDN") continue;
    const ports: PortConfiguration = {};
    for (const port of slice.ports ?? []) {
      if (port.port === undefined) continue;
      ports[port.name ?? ""] = { Protocol: protocol(port.protocol), Port: port.port };
    }
    // The EndpointSlice controller writes `"endpoints": null` for a service without ready pods
    // (Go's nil slice; discovery/v1 EndpointSlice.Endpoints has no omitempty), typed as required.
    for (const endpoint of slice.endpoints ?? []) {
      const conditions = endpoint.conditions ?? {};
      // Kubernetes: an unset "ready" means ready; "serving" falls back to "ready". Cilium exports
      // serving (also terminating) backends so connections drain instead of breaking.
      const ready = conditions.ready ?? true;
      const serving = conditions.serving ?? ready;
      if (!ready && !serving) continue;
      for (const address of endpoint.addresses) {
        backends[address] = { ...(backends[address] ?? {}), ...ports };
        if (endpoint.hostname) hostnames[address] = endpoint.hostname;
        if (endpoint.zone) {
          const forZones = endpoint.hints?.forZones?.map((z) => ({ name: z.name })) ?? null;
          zones[address] = { zone: endpoint.zone, forZones };
        }
      }
    }
  }
  const value: ClusterService = {
    cluster: cluster.name,
    namespace: service.metadata?.namespace ?? "",
    name,
    frontends,
    backends,
    labels: { ...(service.metadata?.labels ?? {}) },
    selector: { ...(service.spec?.selector ?? {}) },
    includeExternal: true,
    shared: true,
    clusterID: cluster.id,
  };
  if (Object.keys(hostnames).length > 0) value.hostnames = hostnames;
  if (Object.keys(zones).length > 0) value.zones = zones;
  return value;
}
