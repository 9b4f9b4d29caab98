/**
 * Reads the datapath's flow events: the cm_flows ring (drained on a timer, never blocking) and the
 * cm_flow_lost counter (events the ring had no room for because the reader fell behind). Turning
 * flows on or off is the DP_CONFIG_FLOWS bit of cm_config; other bits are left as they are.
 * Turning them on clears cm_flow_agg, the aggregation table (dp_flow_agg.h), so every connection
 * is reported again once rather than staying aggregated on what was reported before.
 */
import { join } from "node:path";
import { configCodec } from "../datapath/codecs.js";
import { mapsDirectory } from "../datapath/maps.js";
import { BpfMap, bytesCodec, RingBufferReader, u32Codec, u64Codec } from "../libbpf-ts/index.js";
import { CONFIG_FLAG_FLOWS, CONFIG_FLAG_FLOWS_ALL, decodeFlowEvent, type FlowEvent } from "./event.js";

export const FlowMapName = { ring: "cm_flows", lost: "cm_flow_lost", aggregation: "cm_flow_agg" } as const;

/**
 * struct flow_agg_table in dp_flow_agg.h (the map's value size is checked on open): slots of
 * {tag, last, flags} (u32 each), `last` in units of 2^20 ns; a connection is reported again after
 * intervalUnits (5 s).
 */
export const FlowAggregation = {
  slots: 1024,
  slotBytes: 12,
  intervalUnits: Math.floor(5e9 / 2 ** 20),
} as const;
const AGGREGATION_TABLE_BYTES = FlowAggregation.slots * FlowAggregation.slotBytes;

/** on: drops plus what Cilium's "medium" monitor aggregation reports; all: every packet */
export type FlowReporting = "off" | "on" | "all";

export interface FlowSourceOptions {
  /** called on the event loop for every event, in ring order */
  onEvent: (event: FlowEvent) => void;
  /** how often the ring is drained when started (default 50 ms) */
  pollIntervalMs?: number;
}

export class FlowSource {
  private timer: NodeJS.Timeout | undefined;
  private undecodable = 0;

  private constructor(
    private readonly ring: RingBufferReader,
    private readonly lostMap: BpfMap<number, bigint>,
    private readonly configMap: BpfMap<number, import("../datapath/codecs.js").DatapathConfig>,
    private readonly aggregationMap: BpfMap<number, Buffer>,
    private readonly options: FlowSourceOptions,
  ) {}

  static open(pinRoot: string, options: FlowSourceOptions): FlowSource {
    const dir = mapsDirectory(pinRoot);
    const lostMap = BpfMap.openPinned(join(dir, FlowMapName.lost), u32Codec, u64Codec);
    let configMap: BpfMap<number, import("../datapath/codecs.js").DatapathConfig> | undefined;
    let aggregationMap: BpfMap<number, Buffer> | undefined;
    try {
      configMap = BpfMap.openPinned(join(dir, "cm_config"), u32Codec, configCodec);
      aggregationMap = BpfMap.openPinned(
        join(dir, FlowMapName.aggregation),
        u32Codec,
        bytesCodec(AGGREGATION_TABLE_BYTES),
      );
      let source: FlowSource | undefined;
      const ring = RingBufferReader.openPinned(join(dir, FlowMapName.ring), (record) => {
        try {
          options.onEvent(decodeFlowEvent(record));
        } catch {
          // a short record cannot come from our own program; count it rather than stop reading
          if (source) source.undecodable++;
        }
      });
      source = new FlowSource(ring, lostMap, configMap, aggregationMap, options);
      return source;
    } catch (error) {
      aggregationMap?.close();
      configMap?.close();
      lostMap.close();
      throw error;
    }
  }

  /**
   * Sets DP_CONFIG_FLOWS and DP_CONFIG_FLOWS_ALL for the reporting wanted, keeping the other config
   * bits; from off to on, the aggregation table is cleared first.
   */
  setReporting(reporting: FlowReporting): void {
    const config = this.configMap.get(0) ?? { tunnelIfindex: 0, flags: 0, worldIdentity: 2 };
    const bits = CONFIG_FLAG_FLOWS | CONFIG_FLAG_FLOWS_ALL;
    const wanted =
      reporting === "off" ? 0 : CONFIG_FLAG_FLOWS | (reporting === "all" ? CONFIG_FLAG_FLOWS_ALL : 0);
    const flags = (config.flags & ~bits) | wanted;
    if (flags === config.flags) return;
    if (wanted !== 0 && (config.flags & CONFIG_FLAG_FLOWS) === 0) this.clearAggregation();
    this.configMap.set(0, { ...config, flags });
  }

  /** Forgets which connections were reported: the next packet of each is reported. */
  clearAggregation(): void {
    this.aggregationMap.setPerCpu(0, Buffer.alloc(AGGREGATION_TABLE_BYTES));
  }

  enabled(): boolean {
    return ((this.configMap.get(0)?.flags ?? 0) & CONFIG_FLAG_FLOWS) !== 0;
  }

  /** Drains what the ring holds now; returns the number of events. */
  drain(): number {
    return this.ring.consume();
  }

  /** Events the datapath could not write because the ring was full, summed over CPUs. */
  lostEvents(): bigint {
    return (this.lostMap.getPerCpu(0) ?? []).reduce((sum, value) => sum + value, 0n);
  }

  /** Records that could not be decoded (never expected). */
  undecodableEvents(): number {
    return this.undecodable;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.drain(), this.options.pollIntervalMs ?? 50);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  close(): void {
    this.stop();
    this.ring.close();
    this.lostMap.close();
    this.configMap.close();
    this.aggregationMap.close();
  }
}
