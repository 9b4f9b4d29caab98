/** The datapath's pinned maps, opened with their codecs. Pin layout: <pinRoot>/maps/<map name>. */
import { join } from "node:path";
import { BpfMap, u16Codec, u32Codec } from "../libbpf-ts/index.js";
import {
  type Backend,
  backendCodec,
  type CtEntry,
  type CtKey,
  configCodec,
  ctEntryCodec,
  ctKeyCodec,
  type DatapathConfig,
  type DatapathTrace,
  type EndpointInfo,
  type EndpointKey,
  endpointInfoCodec,
  endpointKeyCodec,
  type IpcacheKey,
  type IpcacheValue,
  ipcacheKeyCodec,
  ipcacheValueCodec,
  METRIC_SLOTS,
  Metric,
  type MetricValue,
  metricValueCodec,
  type NodeConfig,
  type NodePortNat,
  nodeConfigCodec,
  nodePortNatCodec,
  type RevNat,
  revNatCodec,
  type ServiceKey,
  type ServiceValue,
  type SockRevNatKey,
  type SockRevNatValue,
  serviceKeyCodec,
  serviceValueCodec,
  sockRevNatKeyCodec,
  sockRevNatValueCodec,
  traceCodec,
} from "./codecs.js";

export const MapName = {
  services: "cm_services",
  backends: "cm_backends",
  revNat: "cm_rev_nat",
  conntrack: "cm_conntrack",
  ipcache: "cm_ipcache",
  endpoints: "cm_endpoints",
  config: "cm_config",
  trace: "cm_trace",
  sockRevNat: "cm_sock_revnat",
  metrics: "cm_metrics",
  node: "cm_node",
  nodePort: "cm_nodeport",
} as const;

export function mapsDirectory(pinRoot: string): string {
  return join(pinRoot, "maps");
}

export type MetricName = keyof typeof Metric;

export class DatapathMaps {
  private constructor(
    readonly services: BpfMap<ServiceKey, ServiceValue>,
    readonly backends: BpfMap<number, Backend>,
    readonly revNat: BpfMap<number, RevNat>,
    readonly conntrack: BpfMap<CtKey, CtEntry>,
    readonly ipcache: BpfMap<IpcacheKey, IpcacheValue>,
    readonly endpoints: BpfMap<EndpointKey, EndpointInfo>,
    readonly config: BpfMap<number, DatapathConfig>,
    readonly trace: BpfMap<number, DatapathTrace>,
    readonly sockRevNat: BpfMap<SockRevNatKey, SockRevNatValue>,
    readonly metrics: BpfMap<number, MetricValue>,
    readonly node: BpfMap<number, NodeConfig>,
    readonly nodePort: BpfMap<CtKey, NodePortNat>,
  ) {}

  /** Opens the maps a loaded datapath pinned under pinRoot (the agent does this after a restart too). */
  static open(pinRoot: string): DatapathMaps {
    const dir = mapsDirectory(pinRoot);
    const opened: BpfMap<unknown, unknown>[] = [];
    const open = <K, V>(
      name: string,
      key: import("../libbpf-ts/index.js").Codec<K>,
      value: import("../libbpf-ts/index.js").Codec<V>,
    ) => {
      const map = BpfMap.openPinned(join(dir, name), key, value);
      opened.push(map as BpfMap<unknown, unknown>);
      return map;
    };
    try {
      return new DatapathMaps(
        open(MapName.services, serviceKeyCodec, serviceValueCodec),
        open(MapName.backends, u32Codec, backendCodec),
        open(MapName.revNat, u16Codec, revNatCodec),
        open(MapName.conntrack, ctKeyCodec, ctEntryCodec),
        open(MapName.ipcache, ipcacheKeyCodec, ipcacheValueCodec),
        open(MapName.endpoints, endpointKeyCodec, endpointInfoCodec),
        open(MapName.config, u32Codec, configCodec),
        open(MapName.trace, u32Codec, traceCodec),
        open(MapName.sockRevNat, sockRevNatKeyCodec, sockRevNatValueCodec),
        open(MapName.metrics, u32Codec, metricValueCodec),
        open(MapName.node, u32Codec, nodeConfigCodec),
        open(MapName.nodePort, ctKeyCodec, nodePortNatCodec),
      );
    } catch (error) {
      for (const map of opened) map.close();
      throw error;
    }
  }

  setConfig(config: DatapathConfig): void {
    this.config.set(0, config);
  }

  /** This node on the underlay: enables NodePort from outside the node and host → remote pod. */
  setNodeConfig(config: NodeConfig): void {
    this.node.set(0, config);
  }

  readTrace(): DatapathTrace {
    const trace = this.trace.get(0);
    if (!trace) throw new Error("cm_trace has no entry 0");
    return trace;
  }

  /** Counters summed over CPUs, by reason name. */
  readMetrics(): Record<MetricName, MetricValue> {
    const result = {} as Record<MetricName, MetricValue>;
    for (const [name, index] of Object.entries(Metric) as [MetricName, number][]) {
      const perCpu = this.metrics.getPerCpu(index) ?? [];
      result[name] = perCpu.reduce(
        (sum, value) => ({ packets: sum.packets + value.packets, bytes: sum.bytes + value.bytes }),
        { packets: 0n, bytes: 0n },
      );
    }
    return result;
  }

  resetMetrics(): void {
    for (let index = 0; index < METRIC_SLOTS; index++)
      this.metrics.setPerCpu(index, { packets: 0n, bytes: 0n });
  }

  close(): void {
    for (const map of [
      this.services,
      this.backends,
      this.revNat,
      this.conntrack,
      this.ipcache,
      this.endpoints,
      this.config,
      this.trace,
      this.sockRevNat,
      this.metrics,
      this.node,
      this.nodePort,
    ]) {
      map.close();
    }
  }
}
