/**
 * Observes one key range of a writer's etcd so its drift can be repaired (drift.ts). Two modes,
 * measured side by side by bench/kvstore-drift.ts:
 *   - "watch": an etcd watch from the revision the writer listed at; every event is reported
 *     (the writer's own writes come back too and are recognised by their revision). A broken or
 *     reconnected watch (etcd restarted, maybe wiped) is replaced by a full listing + a new watch
 *     from that listing's revision, so nothing that happened meanwhile is missed;
 *   - "poll": a keys-only listing every interval, compared by mod revision.
 */
import type { Etcd3, IKeyValue } from "etcd3";
import type { Logger } from "../log.js";
import type { ObservedKey } from "./drift.js";

export type DriftRepairMode = "watch" | "poll" | "off";

export interface DriftMonitorOptions {
  client: Etcd3;
  /** A prefix (ending in "/") or, with `exact`, a single key. */
  range: string;
  exact?: boolean;
  mode: "watch" | "poll";
  pollIntervalMs: number;
  /** A watch event: one key changed. */
  onEvent: (key: string, observed: ObservedKey) => void;
  /** A complete listing at `revision` (poll; watch after a reconnect). Keys-only in poll mode. */
  onListing: (listing: Map<string, ObservedKey>, revision: bigint) => void;
  log: Logger;
}

function rangeEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

const observedOf = (kv: IKeyValue, withValue: boolean): ObservedKey => ({
  present: true,
  value: withValue ? kv.value.toString() : undefined,
  lease: String(kv.lease ?? "0"),
  modRevision: BigInt(kv.mod_revision),
});

export class DriftMonitor {
  private readonly abort = new AbortController();
  private watcher: { cancel(): Promise<void> } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private listing = false;
  /** Listings done (poll rounds, watch resyncs), for tests and the benchmark. */
  listings = 0;

  constructor(private readonly options: DriftMonitorOptions) {}

  /** Starts observing everything after `revision` (the revision the writer last listed at). */
  start(revision: bigint): void {
    if (this.options.mode === "watch") void this.watchFrom(revision + 1n);
    else {
      this.timer = setInterval(() => void this.list(false), this.options.pollIntervalMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    clearInterval(this.timer);
    clearTimeout(this.retry);
    if (!this.watcher) return;
    // A cancel that never answers (etcd gone, client closing) must not hold up the writer's stop:
    // the watch dies with the client.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.watcher.cancel().catch((error: unknown) => {
        this.options.log.debug({ err: String(error) }, "cancelling drift watch failed");
      }),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, 2_000);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  /** Lists the range (with values or keys only) and reports it; returns its revision. */
  async list(withValues: boolean): Promise<bigint | undefined> {
    if (this.listing || this.abort.signal.aborted) return undefined;
    this.listing = true;
    try {
      const { client, range, exact } = this.options;
      const response = await client.kv.range({
        key: Buffer.from(range),
        ...(exact ? {} : { range_end: rangeEnd(range) }),
        keys_only: !withValues,
      });
      const listing = new Map<string, ObservedKey>();
      for (const kv of response.kvs) listing.set(kv.key.toString(), observedOf(kv, withValues));
      const revision = BigInt(response.header.revision);
      this.listings++;
      if (!this.abort.signal.aborted) this.options.onListing(listing, revision);
      return revision;
    } catch (error) {
      this.options.log.warn({ range: this.options.range, err: String(error) }, "drift check listing failed");
      return undefined;
    } finally {
      this.listing = false;
    }
  }

  private retry: NodeJS.Timeout | undefined;

  private async watchFrom(revision: bigint): Promise<void> {
    if (this.abort.signal.aborted) return;
    const { client, range, exact } = this.options;
    const builder = client.watch();
    (exact ? builder.key(range) : builder.prefix(range)).startRevision(String(revision));
    // watcher(), not create(): every handler is on before the stream opens, so a stream that breaks
    // before its first confirmation and reopens (maybe on a wiped etcd) is seen as a reconnect.
    const watcher = builder.watcher();
    this.watcher = watcher;
    let disconnected = false;
    let replaced = false;
    const replace = (why: unknown) => {
      if (replaced) return;
      replaced = true;
      // replaced by a new watch below: a failed cancel leaves nothing behind
      void watcher.cancel().catch(() => undefined);
      this.restartLater(why);
    };
    watcher.on("put", (kv) => this.options.onEvent(kv.key.toString(), observedOf(kv, true)));
    watcher.on("delete", (kv) =>
      this.options.onEvent(kv.key.toString(), {
        present: false,
        lease: "0",
        modRevision: BigInt(kv.mod_revision),
      }),
    );
    watcher.on("disconnected", () => {
      disconnected = true;
    });
    // After a reconnect the resumed watch may sit on another (wiped) etcd: list and watch anew.
    watcher.on("connected", () => {
      if (disconnected) replace("watch reconnected");
    });
    watcher.on("error", (error) => replace(error));
    watcher.on("end", () => replace("watch ended"));
  }

  private restartLater(why: unknown): void {
    if (this.abort.signal.aborted) return;
    this.options.log.info(
      { range: this.options.range, why: String(why) },
      "drift watch restarts from a listing",
    );
    this.retry = setTimeout(async () => {
      const revision = await this.list(true);
      if (revision === undefined) this.restartLater("listing failed");
      else void this.watchFrom(revision + 1n);
    }, 500);
    this.retry.unref();
  }
}
