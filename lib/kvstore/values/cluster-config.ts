/** `cilium/cluster-config/<cluster>` — Cilium's CiliumClusterConfig (https://github.com/cilium/cilium/blob/main/pkg/clustermesh/types/types.go). */
import { FieldReader, type GoStruct, goMarshal, parseJsonObject } from "../go-json.js";

export interface ClusterConfig {
  id: number;
  capabilities: {
    syncedCanaries: boolean;
    cached: boolean;
    maxConnectedClusters: number;
    /** undefined = the writer predates MCS-API (Go nil pointer). */
    serviceExportsEnabled?: boolean;
    /**
     * Newer than 1.18.4 (services-and-endpointslices, endpointslices-only, …). Kept as written and
     * not interpreted: Cilium decodes it as a plain string and 1.16-1.18 do not know
     * the field, so an unknown value is legal and never a reason to refuse the remote.
     */
    endpointSlicesExportMode: string;
  };
}

export function encodeClusterConfig(config: ClusterConfig): string {
  const c = config.capabilities;
  const struct: GoStruct = {
    id: config.id === 0 ? undefined : config.id,
    // omitempty has no effect on a struct value: capabilities are always written.
    capabilities: {
      syncedCanaries: c.syncedCanaries || undefined,
      cached: c.cached || undefined,
      maxConnectedClusters: c.maxConnectedClusters === 0 ? undefined : c.maxConnectedClusters,
      serviceExportsEnabled: c.serviceExportsEnabled,
      endpointSlicesExportMode: c.endpointSlicesExportMode === "" ? undefined : c.endpointSlicesExportMode,
    },
  };
  return goMarshal(struct);
}

/** What our clustermesh-apiserver writes for its own cluster. */
export function ownClusterConfig(id: number, maxConnectedClusters: number): ClusterConfig {
  return {
    id,
    capabilities: {
      syncedCanaries: true,
      cached: false,
      maxConnectedClusters,
      serviceExportsEnabled: false,
      endpointSlicesExportMode: "",
    },
  };
}

export function decodeClusterConfig(key: string, raw: string | Buffer): ClusterConfig {
  const reader = new FieldReader(key, parseJsonObject(key, raw));
  const caps = reader.object_("capabilities") ?? new FieldReader(key, {}, "capabilities");
  const config: ClusterConfig = {
    id: reader.uint("id", 32),
    capabilities: {
      syncedCanaries: caps.bool("syncedCanaries"),
      cached: caps.bool("cached"),
      maxConnectedClusters: caps.uint("maxConnectedClusters", 32),
      endpointSlicesExportMode: caps.string("endpointSlicesExportMode"),
    },
  };
  if (caps.has("serviceExportsEnabled"))
    config.capabilities.serviceExportsEnabled = caps.bool("serviceExportsEnabled");
  return config;
}
