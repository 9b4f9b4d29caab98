/**
 * The agent's recent flows: a bounded ring (oldest overwritten, like Hubble's ring buffer) and the
 * followers of new flows. A follower is called synchronously; it must not block (the server's
 * followers drop flows for a client that does not keep up, counted, rather than buffer them).
 */
import type { HubbleFlow } from "../../lib/hubble/flow.js";

export type FlowListener = (flow: HubbleFlow) => void;
export type LostListener = (lost: number) => void;

export class FlowStore {
  private readonly ring: (HubbleFlow | undefined)[];
  private next = 0;
  private count = 0;
  private seenTotal = 0;
  private readonly listeners = new Set<FlowListener>();
  private readonly lostListeners = new Set<LostListener>();
  readonly startedAt = process.hrtime.bigint();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new RangeError(`flow store capacity: ${capacity} is not a positive integer`);
    this.ring = new Array(capacity);
  }

  add(flow: HubbleFlow): void {
    this.ring[this.next] = flow;
    this.next = (this.next + 1) % this.capacity;
    this.count = Math.min(this.count + 1, this.capacity);
    this.seenTotal++;
    for (const listener of this.listeners) listener(flow);
  }

  /** Events the datapath could not deliver (its ring was full): told to followers. */
  lost(count: number): void {
    if (count <= 0) return;
    for (const listener of this.lostListeners) listener(count);
  }

  /** Oldest first. */
  list(): HubbleFlow[] {
    const flows: HubbleFlow[] = [];
    const start = (this.next - this.count + this.capacity) % this.capacity;
    for (let index = 0; index < this.count; index++) {
      const flow = this.ring[(start + index) % this.capacity];
      if (flow) flows.push(flow);
    }
    return flows;
  }

  get size(): number {
    return this.count;
  }

  get seen(): number {
    return this.seenTotal;
  }

  follow(listener: FlowListener, onLost?: LostListener): () => void {
    this.listeners.add(listener);
    if (onLost) this.lostListeners.add(onLost);
    return () => {
      this.listeners.delete(listener);
      if (onLost) this.lostListeners.delete(onLost);
    };
  }
}
