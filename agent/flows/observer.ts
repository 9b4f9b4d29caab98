/**
 * The agent's flows: reads the datapath's ring (bpf/flows), turns each event into a Hubble flow
 * enriched from a directory snapshot (rebuilt at most once a second, only while flows arrive),
 * keeps the recent ones (FlowStore) and serves them over Hubble's observer API. The datapath's lost
 * events (its ring was full) are passed on to followers as LostEvents. Flows are switched on in
 * cm_config at start, and again if something rewrote the config without the bit (the tunnel set-up).
 */

import type { FlowEvent } from "../../bpf/flows/event.js";
import { FlowSource } from "../../bpf/flows/source.js";
import type { HubbleConfig } from "./config.js";
import { type DirectoryInputs, FlowDirectory } from "./directory.js";
import { ObserverServer, type ObserverTls } from "./observer-server.js";
import { FlowStore } from "./store.js";
import { type ConversionContext, realtimeOffsetNs, toHubbleFlow } from "./to-hubble.js";

const DIRECTORY_MAX_AGE_MS = 1000;
const POLL_INTERVAL_MS = 50;

export interface FlowObserverOptions {
  config: HubbleConfig;
  pinRoot: string;
  nodeName: string;
  clusterName: string;
  version: string;
  directory: () => DirectoryInputs;
  serviceOf?: ConversionContext["serviceOf"];
  tls?: ObserverTls;
  onError: (error: unknown, what: string) => void;
}

export class FlowObserver {
  readonly store: FlowStore;
  private directory: FlowDirectory;
  private directoryAt = 0;
  private lostSeen = 0n;
  private timer: NodeJS.Timeout | undefined;
  private source: FlowSource | undefined;
  private server: ObserverServer | undefined;

  private constructor(private readonly options: FlowObserverOptions) {
    this.store = new FlowStore(options.config.bufferSize);
    this.directory = FlowDirectory.empty(options.clusterName);
  }

  static async start(options: FlowObserverOptions): Promise<FlowObserver> {
    const observer = new FlowObserver(options);
    try {
      observer.source = FlowSource.open(options.pinRoot, { onEvent: (event) => observer.onEvent(event) });
      observer.lostSeen = observer.source.lostEvents();
      observer.ensureEnabled();
      observer.server = await ObserverServer.start({
        store: observer.store,
        nodeName: options.nodeName,
        version: options.version,
        socketPath: options.config.socketPath,
        listenAddress: options.config.listenAddress,
        tls: options.tls,
        onError: (error) => options.onError(error, "hubble stream"),
      });
    } catch (error) {
      await observer.close();
      throw error;
    }
    observer.timer = setInterval(() => observer.tick(), POLL_INTERVAL_MS);
    observer.timer.unref();
    return observer;
  }

  get addresses(): string[] {
    return this.server?.addresses ?? [];
  }

  /** Reads what the ring holds now (the timer does this every 50 ms). */
  tick(): void {
    const source = this.source;
    if (!source) return;
    try {
      source.drain();
      const lost = source.lostEvents();
      if (lost > this.lostSeen) this.store.lost(Number(lost - this.lostSeen));
      this.lostSeen = lost;
      this.ensureEnabled();
    } catch (error) {
      this.options.onError(error, "reading flow events");
    }
  }

  lostEvents(): bigint {
    return this.source?.lostEvents() ?? 0n;
  }

  private ensureEnabled(): void {
    const { flows } = this.options.config;
    this.source?.setReporting(flows);
  }

  private onEvent(event: FlowEvent): void {
    const now = Date.now();
    if (now - this.directoryAt > DIRECTORY_MAX_AGE_MS) {
      try {
        this.directory = new FlowDirectory(this.options.directory());
      } catch (error) {
        this.options.onError(error, "building the flow directory");
      }
      this.directoryAt = now;
    }
    this.store.add(
      toHubbleFlow(event, {
        nodeName: this.options.nodeName,
        directory: this.directory,
        realtimeOffsetNs: realtimeOffsetNs(),
        serviceOf: this.options.serviceOf,
      }),
    );
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    try {
      this.source?.setReporting("off");
    } catch {
      // the maps may already be gone with the datapath: nothing left to switch off
    }
    this.source?.close();
    await this.server?.close();
  }
}
