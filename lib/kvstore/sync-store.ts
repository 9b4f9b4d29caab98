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
 *     deleted, the canary `cilium/synced/<cluster>/<syncedKey>` is written (with a lease).
 * Writes run concurrently (bounded), coalesced per key, retried with backoff on failure.
 */
import type { Etcd3 } from "etcd3";
import type { Logger } from "../log.js";
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
}

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
  readonly stats: SyncStoreStats = { puts: 0, deletes: 0, skippedUnchanged: 0, errors: 0, desired: 0 };

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

  async start(): Promise<void> {
    if (this.options.manageExisting !== false) await this.adoptExisting();
    this.started = true;
    if (this.awaitingCanary) this.markStale();
    this.pump();
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
  }

  private async adoptExisting(): Promise<void> {
    const response = await this.options.client.getAll().prefix(`${this.options.prefix}/`).exec();
    let adopted = 0;
    for (const kv of response.kvs) {
      const suffix = kv.key.toString().slice(this.options.prefix.length + 1);
      const lease = String(kv.lease ?? "0");
      const leased = lease !== "0" && (await this.options.leases.adopt(this.fullKey(suffix), lease));
      if (leased) adopted++;
      this.written.set(suffix, { value: kv.value.toString(), leased, ownedThisRun: false });
      // Keys already desired (upserted before start) may now turn out unchanged, or need a write.
      this.markDirty(suffix);
    }
    this.options.log.info(
      { prefix: this.options.prefix, found: response.kvs.length, adopted },
      "listed keys left by a previous run",
    );
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
      try {
        await this.options.client.put(key).value(desired).lease(lease).exec();
      } catch (error) {
        if (isLeaseNotFound(error)) this.options.leases.markLost(lease);
        throw error;
      }
      this.written.set(suffix, { value: desired, leased: true, ownedThisRun: true });
      this.stats.puts++;
    } else if (action === "delete") {
      await this.options.client.delete().key(key).exec();
      this.written.delete(suffix);
      this.options.leases.release(key);
      this.stats.deletes++;
    }
  }

  private settled(suffix: string): void {
    this.inflight.delete(suffix);
    this.attempts.delete(suffix);
    const action = decideSyncAction(
      this.desired.get(suffix),
      this.written.get(suffix),
      this.initialSyncComplete,
    );
    if (action === "none") this.awaitingCanary?.delete(suffix);
    else this.dirty.add(suffix);
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
      await this.options.client.put(key).value(rfc3339()).lease(lease).exec();
      this.options.log.info({ key }, "initial sync written; canary set");
      this.markSynced();
    } catch (error) {
      if (isLeaseNotFound(error) && this.canaryLease) this.options.leases.markLost(this.canaryLease);
      this.stats.errors++;
      this.options.log.warn({ key, err: error }, "writing sync canary failed; retrying");
      setTimeout(() => void this.writeCanary(), this.options.retryBaseMs ?? 500).unref();
    } finally {
      this.canaryInflight = false;
    }
  }

  private markSynced(): void {
    if (this.canaryWritten) return;
    this.canaryWritten = true;
    for (const resolve of this.syncedWaiters.splice(0)) resolve();
  }
}
