/**
 * Writer side, like Cilium's SyncStore: holds the desired key → value set under one prefix and
 * makes etcd match it.
 *   - every key is written with a lease (LeaseManager: ≤ 1000 keys per lease, keep-alive); a lost
 *     lease re-creates its keys;
 *   - an upsert with the bytes already written is skipped; a delete removes the key;
 *   - on start it lists its prefix: keys left by a previous run whose lease is alive are adopted
 *     (unchanged ones are not rewritten); keys nobody desires are deleted only once synced() says
 *     the initial desired set is complete — never before, so a restart does not blank the store;
 *   - after synced(), once every key desired at that moment is written and every stale key
 *     deleted, the canary `cilium/synced/<cluster>/<syncedKey>` is written (with a lease);
 *   - drift is repaired (drift.ts): a key of ours deleted or altered by someone else is rewritten,
 *     a stray key under our prefix is deleted (once synced), our canary is rewritten — observed by
 *     a watch on the prefix (default) or a periodic keys-only listing (drift-monitor.ts), counted
 *     in stats.repairs / stats.canaryRepairs.
 * Writes run concurrently (bounded), coalesced per key, retried with backoff on failure.
 */
import type { Etcd3 } from "etcd3";
import type { Logger } from "../log.js";
import { classifyDrift, DRIFT_KINDS, type DriftKind, type ObservedKey, repairDelayMs } from "./drift.js";
import { DriftMonitor, type DriftRepairMode } from "./drift-monitor.js";
import { isLeaseNotFound, type LeaseManager } from "./leases.js";
import { keys } from "./paths.js";
import { rfc3339 } from "./values/timestamp.js";

/** What etcd holds for a key, as far as this store knows. */
export interface WrittenKey {
  value: string;
  /** Attached to a lease our LeaseManager keeps alive. */
  leased: boolean;
  /** Written by this process (not merely found at start). */
  ownedThisRun: boolean;
}

export type SyncAction = "put" | "delete" | "none";

/** The decision for one key. Pure. */
export function decideSyncAction(
  desired: string | undefined,
  written: WrittenKey | undefined,
  initialSyncComplete: boolean,
): SyncAction {
  if (desired !== undefined) return written?.leased && written.value === desired ? "none" : "put";
  if (written === undefined) return "none";
  // A key found at start and not (yet) desired may still be in the initial set: wait for synced().
  return written.ownedThisRun || initialSyncComplete ? "delete" : "none";
}

export interface SyncStoreOptions {
  client: Etcd3;
  leases: LeaseManager;
  /** e.g. "cilium/state/nodes/v1"; keys are `${prefix}/${suffix}`. */
  prefix: string;
  /** Write this canary after the initial sync; absent = no canary. */
  canary?: { clusterName: string; syncedKey: string };
  /**
   * List the prefix at start (adopt / delete stale). Off for stores that own single keys under a
   * shared prefix (heartbeat, cluster config), where other keys belong to others.
   */
  manageExisting?: boolean;
  /**
   * How drift is noticed (default "watch"): an etcd watch on the prefix, a keys-only listing every
   * `driftPollIntervalMs` ("poll"), or not at all ("off").
   */
  driftRepair?: DriftRepairMode;
  driftPollIntervalMs?: number;
  concurrency?: number;
  retryBaseMs?: number;
  retryMaxMs?: number;
  log: Logger;
}

export interface SyncStoreStats {
  puts: number;
  deletes: number;
  skippedUnchanged: number;
  errors: number;
  desired: number;
  /** Keys repaired after someone else deleted, altered or added them (running totals). */
  repairs: Record<DriftKind, number>;
  /** Canary rewrites after it was deleted or altered (running totals). */
  canaryRepairs: Record<DriftKind, number>;
}

const noRepairs = (): Record<DriftKind, number> =>
  Object.fromEntries(DRIFT_KINDS.map((kind) => [kind, 0])) as Record<DriftKind, number>;

/** Repairs of one key closer together than this count as a fight with another writer (backoff). */
const REPAIR_FIGHT_WINDOW_MS = 10_000;

export class SyncStore {
  private readonly desired = new Map<string, string>();
  private readonly written = new Map<string, WrittenKey>();
  private readonly dirty = new Set<string>();
  private readonly inflight = new Set<string>();
  private readonly attempts = new Map<string, number>();
  private readonly retryTimers = new Map<string, NodeJS.Timeout>();
  /** Keys that must settle before the canary goes out (undefined until synced()). */
  private awaitingCanary: Set<string> | undefined;
  private initialSyncComplete = false;
  private canaryWritten = false;
  private canaryInflight = false;
  private canaryLease: string | undefined;
  private started = false;
  private stopped = false;
  private readonly unsubscribeLost: () => void;
  private readonly syncedWaiters: (() => void)[] = [];
  /** Revision of our last write or delete per key (or of the key when adopted). */
  private readonly touched = new Map<string, bigint>();
  /** Keys with a detected drift awaiting their repair write. */
  private readonly pendingRepair = new Map<string, DriftKind>();
  private readonly recentRepairs = new Map<string, { count: number; at: number }>();
  /** Observations that arrived while our own write of the key was in flight. */
  private readonly observedInFlight = new Map<string, ObservedKey>();
  private monitor: DriftMonitor | undefined;
  private lastObservedRevision = 0n;
  private canaryMonitor: DriftMonitor | undefined;
  private canaryRevision: bigint | undefined;
  private canaryValue: string | undefined;
  private canaryRepair: DriftKind | undefined;
  private canaryObservedInFlight: ObservedKey | undefined;
  private canaryRepairs: { count: number; at: number } | undefined;
  readonly stats: SyncStoreStats = {
    puts: 0,
    deletes: 0,
    skippedUnchanged: 0,
    errors: 0,
    desired: 0,
    repairs: noRepairs(),
    canaryRepairs: noRepairs(),
  };

  constructor(private readonly options: SyncStoreOptions) {
    this.unsubscribeLost = options.leases.onLost((_lease, lostKeys) => this.onLeaseLost(lostKeys));
  }

  get prefix(): string {
    return this.options.prefix;
  }

  /** True once the canary is written (or, without a canary, once the initial sync is written). */
  get isSynced(): boolean {
    return this.canaryWritten;
  }

  whenSynced(): Promise<void> {
    if (this.canaryWritten) return Promise.resolve();
    return new Promise((resolve) => this.syncedWaiters.push(resolve));
  }

  get pending(): number {
    return this.dirty.size + this.inflight.size;
  }

  private fullKey(suffix: string): string {
    return `${this.options.prefix}/${suffix}`;
  }

  private get ownsPrefix(): boolean {
    return this.options.manageExisting !== false;
  }

  private get driftMode(): DriftRepairMode {
    return this.options.driftRepair ?? "watch";
  }

  async start(): Promise<void> {
    const revision = this.ownsPrefix ? await this.adoptExisting() : await this.currentRevision();
    this.started = true;
    if (this.awaitingCanary) this.markStale();
    this.pump();
    if (this.driftMode !== "off" && !this.stopped) {
      this.monitor = this.newMonitor(`${this.options.prefix}/`, false);
      this.monitor.start(revision);
    }
  }

  /** Listings the drift monitors made (poll rounds, watch resyncs). */
  get driftListings(): number {
    return (this.monitor?.listings ?? 0) + (this.canaryMonitor?.listings ?? 0);
  }

  private newMonitor(range: string, exact: boolean): DriftMonitor {
    return new DriftMonitor({
      client: this.options.client,
      range,
      exact,
      mode: this.driftMode === "poll" ? "poll" : "watch",
      pollIntervalMs: this.options.driftPollIntervalMs ?? 2_000,
      onEvent: (key, observed) => (exact ? this.observeCanary(observed) : this.observe(key, observed)),
      onListing: (listing, revision) =>
        exact ? this.compareCanary(listing.get(range), revision) : this.compareListing(listing, revision),
      log: this.options.log,
    });
  }

  private async currentRevision(): Promise<bigint> {
    const response = await this.options.client.kv.range({
      key: Buffer.from(this.options.prefix),
      count_only: true,
    });
    return BigInt(response.header.revision);
  }

  /** Desired value of a key. Skipped when the same bytes are already desired. */
  upsert(suffix: string, value: string): void {
    if (this.desired.get(suffix) === value) {
      this.stats.skippedUnchanged++;
      return;
    }
    this.desired.set(suffix, value);
    this.stats.desired = this.desired.size;
    this.markDirty(suffix);
  }

  delete(suffix: string): void {
    if (!this.desired.delete(suffix) && !this.written.has(suffix)) return;
    this.stats.desired = this.desired.size;
    this.markDirty(suffix);
  }

  has(suffix: string): boolean {
    return this.desired.has(suffix);
  }

  /** Desired keys (suffixes). */
  desiredKeys(): string[] {
    return [...this.desired.keys()];
  }

  /** Forces a rewrite of a key (e.g. Cilium re-asserts its cluster config every 5 minutes). */
  rewrite(suffix: string): void {
    const written = this.written.get(suffix);
    if (written) written.leased = false;
    this.markDirty(suffix);
  }

  /** The initial desired set is complete: delete stale keys, then write the canary. */
  synced(): void {
    if (this.awaitingCanary || this.initialSyncComplete) return;
    this.initialSyncComplete = true;
    this.awaitingCanary = new Set([...this.dirty, ...this.inflight]);
    if (this.started) this.markStale();
    this.pump();
  }

  private markStale(): void {
    for (const suffix of this.written.keys()) {
      if (!this.desired.has(suffix)) {
        this.awaitingCanary?.add(suffix);
        this.markDirty(suffix);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribeLost();
    for (const timer of this.retryTimers.values()) clearTimeout(timer);
    this.retryTimers.clear();
    await Promise.all([this.monitor?.stop(), this.canaryMonitor?.stop()]);
  }

  /** Lists the prefix, adopting what a previous run left; returns the listing's revision. */
  private async adoptExisting(): Promise<bigint> {
    const response = await this.options.client.getAll().prefix(`${this.options.prefix}/`).exec();
    let adopted = 0;
    for (const kv of response.kvs) {
      const suffix = kv.key.toString().slice(this.options.prefix.length + 1);
      const lease = String(kv.lease ?? "0");
      const leased = lease !== "0" && (await this.options.leases.adopt(this.fullKey(suffix), lease));
      if (leased) adopted++;
      this.written.set(suffix, { value: kv.value.toString(), leased, ownedThisRun: false });
      this.touched.set(suffix, BigInt(kv.mod_revision));
      // Keys already desired (upserted before start) may now turn out unchanged, or need a write.
      this.markDirty(suffix);
    }
    this.options.log.info(
      { prefix: this.options.prefix, found: response.kvs.length, adopted },
      "listed keys left by a previous run",
    );
    return BigInt(response.header.revision);
  }

  // ---- drift: observe, classify, repair ----

  /** The highest revision the drift monitor has reported (tests wait for it to pass a write). */
  get observedRevision(): bigint {
    return this.lastObservedRevision;
  }

  private observe(key: string, observed: ObservedKey): void {
    if (observed.modRevision > this.lastObservedRevision) this.lastObservedRevision = observed.modRevision;
    const base = `${this.options.prefix}/`;
    if (!key.startsWith(base) || this.stopped) return;
    const suffix = key.slice(base.length);
    if (this.inflight.has(suffix)) {
      // judged once our own write has settled and its revision is known
      this.observedInFlight.set(suffix, observed);
      return;
    }
    this.applyObservation(suffix, observed);
  }

  private applyObservation(suffix: string, observed: ObservedKey): void {
    const written = this.written.get(suffix);
    const touched = this.touched.get(suffix);
    const drift = classifyDrift(
      {
        desired: this.desired.get(suffix),
        written: written?.value,
        revision: touched,
        ownsPrefix: this.ownsPrefix,
      },
      observed,
    );
    if (drift === undefined) {
      // our own delete seen: nothing older can arrive any more for this key
      if (!observed.present && touched === observed.modRevision && !written) this.touched.delete(suffix);
      else if (!observed.present && written && this.desired.get(suffix) === undefined)
        this.written.delete(suffix);
      return;
    }
    this.touched.set(suffix, observed.modRevision);
    if (drift === "missing") this.written.delete(suffix);
    else
      this.written.set(suffix, {
        value: observed.value ?? "",
        leased: false,
        ownedThisRun: drift === "altered" && (written?.ownedThisRun ?? false),
      });
    this.pendingRepair.set(suffix, drift);
    this.scheduleRepair(suffix, drift);
  }

  /** Repairs at once, or after a growing delay when the key keeps drifting (another writer). */
  private scheduleRepair(suffix: string, drift: DriftKind): void {
    const now = Date.now();
    const recent = this.recentRepairs.get(suffix);
    const count = recent && now - recent.at < REPAIR_FIGHT_WINDOW_MS ? recent.count + 1 : 1;
    this.recentRepairs.set(suffix, { count, at: now });
    const delay = repairDelayMs(count);
    if (count === 3)
      this.options.log.warn(
        { key: this.fullKey(suffix), drift, repairs: count },
        "key keeps drifting (another writer?); repairs back off",
      );
    if (delay === 0 || this.retryTimers.has(suffix)) {
      this.markDirty(suffix);
      return;
    }
    this.retryTimers.set(
      suffix,
      setTimeout(() => {
        this.retryTimers.delete(suffix);
        this.markDirty(suffix);
      }, delay),
    );
  }

  /** A complete listing (poll, or a watch resync): every key compared with what we wrote. */
  private compareListing(listing: Map<string, ObservedKey>, revision: bigint): void {
    const base = `${this.options.prefix}/`;
    const busy = (suffix: string) =>
      this.inflight.has(suffix) || this.dirty.has(suffix) || (this.touched.get(suffix) ?? -1n) > revision;
    const seen = new Set<string>();
    for (const [key, observed] of listing) {
      if (!key.startsWith(base)) continue;
      const suffix = key.slice(base.length);
      seen.add(suffix);
      if (!busy(suffix)) this.applyObservation(suffix, observed);
    }
    for (const suffix of [...this.written.keys()]) {
      if (!seen.has(suffix) && !busy(suffix))
        this.applyObservation(suffix, { present: false, lease: "0", modRevision: revision });
    }
    // revisions of keys deleted before this listing are no longer needed to judge anything
    for (const [suffix, touched] of this.touched)
      if (touched <= revision && !this.written.has(suffix)) this.touched.delete(suffix);
  }

  private observeCanary(observed: ObservedKey): void {
    if (this.canaryInflight) {
      // judged once our own canary write has settled and its revision is known
      this.canaryObservedInFlight = observed;
      return;
    }
    if (this.canaryRevision === undefined || observed.modRevision <= this.canaryRevision || this.stopped)
      return;
    let drift: DriftKind | undefined;
    if (!observed.present) drift = "missing";
    else if (
      observed.value === undefined ||
      observed.value !== this.canaryValue ||
      observed.lease !== this.canaryLease
    )
      drift = "altered";
    if (!drift) return;
    this.canaryRevision = observed.modRevision;
    this.canaryRepair = drift;
    const now = Date.now();
    const recent = this.canaryRepairs;
    const count = recent && now - recent.at < REPAIR_FIGHT_WINDOW_MS ? recent.count + 1 : 1;
    this.canaryRepairs = { count, at: now };
    const delay = repairDelayMs(count);
    if (delay === 0) void this.writeCanary();
    else setTimeout(() => void this.writeCanary(), delay).unref();
  }

  private compareCanary(observed: ObservedKey | undefined, revision: bigint): void {
    this.observeCanary(observed ?? { present: false, lease: "0", modRevision: revision });
  }

  private markDirty(suffix: string): void {
    if (this.stopped) return;
    this.dirty.add(suffix);
    if (this.started) queueMicrotask(() => this.pump());
  }

  private pump(): void {
    if (!this.started || this.stopped) return;
    const concurrency = this.options.concurrency ?? 16;
    for (const suffix of this.dirty) {
      if (this.inflight.size >= concurrency) break;
      if (this.inflight.has(suffix) || this.retryTimers.has(suffix)) continue;
      this.dirty.delete(suffix);
      this.inflight.add(suffix);
      void this.process(suffix).then(
        () => this.settled(suffix),
        (error: unknown) => this.failed(suffix, error),
      );
    }
    this.maybeWriteCanary();
  }

  private async process(suffix: string): Promise<void> {
    const desired = this.desired.get(suffix);
    const written = this.written.get(suffix);
    const action = decideSyncAction(desired, written, this.initialSyncComplete);
    const key = this.fullKey(suffix);
    if (action === "put" && desired !== undefined) {
      const lease = await this.options.leases.leaseFor(key);
      let revision: bigint;
      try {
        const response = await this.options.client.put(key).value(desired).lease(lease).exec();
        revision = BigInt(response.header.revision);
      } catch (error) {
        if (isLeaseNotFound(error)) this.options.leases.markLost(lease);
        throw error;
      }
      this.written.set(suffix, { value: desired, leased: true, ownedThisRun: true });
      this.touched.set(suffix, revision);
      this.stats.puts++;
      this.countRepair(suffix);
    } else if (action === "delete") {
      const response = await this.options.client.delete().key(key).exec();
      this.written.delete(suffix);
      this.touched.set(suffix, BigInt(response.header.revision));
      this.options.leases.release(key);
      this.stats.deletes++;
      this.countRepair(suffix);
    }
  }

  private countRepair(suffix: string): void {
    const drift = this.pendingRepair.get(suffix);
    if (drift === undefined) return;
    this.pendingRepair.delete(suffix);
    this.stats.repairs[drift]++;
    this.options.log.info({ key: this.fullKey(suffix), drift }, "repaired drifted kvstore key");
  }

  private settled(suffix: string): void {
    this.inflight.delete(suffix);
    this.attempts.delete(suffix);
    const observed = this.observedInFlight.get(suffix);
    if (observed) {
      this.observedInFlight.delete(suffix);
      this.applyObservation(suffix, observed);
    }
    const action = decideSyncAction(
      this.desired.get(suffix),
      this.written.get(suffix),
      this.initialSyncComplete,
    );
    if (action === "none") {
      this.awaitingCanary?.delete(suffix);
      // the drift went away by itself (e.g. the key is no longer desired): nothing was repaired
      if (!this.dirty.has(suffix) && !this.retryTimers.has(suffix)) this.pendingRepair.delete(suffix);
    } else this.dirty.add(suffix);
    this.pump();
  }

  private failed(suffix: string, error: unknown): void {
    this.inflight.delete(suffix);
    this.stats.errors++;
    const attempt = (this.attempts.get(suffix) ?? 0) + 1;
    this.attempts.set(suffix, attempt);
    const delay = Math.min(
      this.options.retryMaxMs ?? 5_000,
      (this.options.retryBaseMs ?? 100) * 2 ** (attempt - 1),
    );
    this.options.log.warn(
      { key: this.fullKey(suffix), attempt, delayMs: delay, err: error },
      "kvstore write failed; retrying",
    );
    if (this.stopped) return;
    this.retryTimers.set(
      suffix,
      setTimeout(() => {
        this.retryTimers.delete(suffix);
        this.markDirty(suffix);
      }, delay),
    );
  }

  private onLeaseLost(lostKeys: string[]): void {
    const base = `${this.options.prefix}/`;
    for (const key of lostKeys) {
      if (this.options.canary && key === this.canaryKey()) {
        this.canaryLease = undefined;
        if (this.canaryWritten) void this.writeCanary();
        continue;
      }
      if (!key.startsWith(base)) continue;
      const suffix = key.slice(base.length);
      this.written.delete(suffix);
      if (this.desired.has(suffix)) this.markDirty(suffix);
    }
  }

  private canaryKey(): string | undefined {
    const canary = this.options.canary;
    return canary ? keys.canary(canary.clusterName, canary.syncedKey) : undefined;
  }

  private maybeWriteCanary(): void {
    if (this.canaryWritten || this.canaryInflight || !this.awaitingCanary || this.awaitingCanary.size > 0)
      return;
    if (!this.options.canary) {
      this.markSynced();
      return;
    }
    void this.writeCanary();
  }

  private async writeCanary(): Promise<void> {
    const key = this.canaryKey();
    if (!key || this.canaryInflight || this.stopped) return;
    this.canaryInflight = true;
    try {
      const lease = await this.options.leases.leaseFor(key);
      this.canaryLease = lease;
      const value = rfc3339();
      const response = await this.options.client.put(key).value(value).lease(lease).exec();
      this.canaryValue = value;
      this.canaryRevision = BigInt(response.header.revision);
      if (this.canaryRepair) {
        this.stats.canaryRepairs[this.canaryRepair]++;
        this.options.log.info({ key, drift: this.canaryRepair }, "repaired sync canary");
        this.canaryRepair = undefined;
      } else if (!this.canaryWritten) this.options.log.info({ key }, "initial sync written; canary set");
      if (!this.canaryMonitor && this.driftMode !== "off" && !this.stopped) {
        this.canaryMonitor = this.newMonitor(key, true);
        this.canaryMonitor.start(this.canaryRevision);
      }
      this.markSynced();
    } catch (error) {
      if (isLeaseNotFound(error) && this.canaryLease) this.options.leases.markLost(this.canaryLease);
      this.stats.errors++;
      this.options.log.warn({ key, err: error }, "writing sync canary failed; retrying");
      setTimeout(() => void this.writeCanary(), this.options.retryBaseMs ?? 500).unref();
    } finally {
      this.canaryInflight = false;
      const observed = this.canaryObservedInFlight;
      this.canaryObservedInFlight = undefined;
      if (observed) this.observeCanary(observed);
    }
  }

  private markSynced(): void {
    if (this.canaryWritten) return;
    this.canaryWritten = true;
    for (const resolve of this.syncedWaiters.splice(0)) resolve();
  }
}
