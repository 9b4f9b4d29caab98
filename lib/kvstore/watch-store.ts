/**
 * Reader side, like Cilium's (restartable) WatchStore: list + watch one prefix of a remote etcd,
 * decode and validate every value, and report upserts and deletes to the owner.
 *   - invalid values never throw out: each is logged once (with its key and reason), counted per
 *     reason (`rejected`: running totals; the same bytes seen again on a relist are not a new
 *     rejection) and reported (onRejected); `rejectedNow` counts the keys whose current value is
 *     invalid. A key that was valid and is overwritten with garbage is reported deleted (the
 *     remote no longer asserts the valid value);
 *   - unchanged values (same bytes) are not re-reported; the bytes are not kept, only a
 *     fingerprint (content-hash.ts) — at 50k remote endpoints the raw JSON was ~15 MB of strings;
 *   - the (re)list is paginated (LIST_PAGE_KEYS per request, all at the first page's revision, so
 *     the pages are one consistent snapshot): a large remote never arrives as one huge gRPC
 *     response decoded into ~100k Buffers at once (the agent's peak RSS followed that response);
 *   - run() may be called again after a broken watch or with a new client (reconnect): known keys
 *     are kept meanwhile, the new list updates what changed, and only keys that really disappeared
 *     are reported deleted (mark and sweep) — never drop everything and re-add;
 *   - `watchWhenSynced` gates each (re)list on the remote's sync canary, so a remote etcd that was
 *     wiped and is still being refilled is never taken as the truth.
 */
import { type Etcd3, type IKeyValue, Range } from "etcd3";
import type { Logger } from "../log.js";
import { contentHash } from "./content-hash.js";
import { emptyRejectCounters, InvalidEntryError, type RejectReason } from "./errors.js";
import { keys } from "./paths.js";
import type { EntryDecoder } from "./remote-validation.js";

export interface WatchStoreOptions<T> {
  /** Watched prefix, with its trailing "/" (e.g. "cilium/state/nodes/v1/cluster2/"). */
  prefix: string;
  decode: EntryDecoder<T>;
  onUpsert: (suffix: string, value: T, previous: T | undefined) => void;
  onDelete: (suffix: string, previous: T) => void;
  onRejected?: (error: InvalidEntryError) => void;
  /** Called once, after the first complete list. */
  onSynced?: () => void;
  /** Keys per list request (default LIST_PAGE_KEYS). */
  listPageKeys?: number;
  log: Logger;
}

interface KnownEntry<T> {
  /** contentHash of the value's bytes */
  hash: number;
  value: T;
}

/**
 * Keys per list request (etcd's `limit`). 10k ipcache entries are ~1 MB on the wire, 10k services
 * of 10 backends ~8 MB: a 50k-endpoint remote lists in ~11 round trips instead of one response of
 * 13 MB decoded at once.
 */
export const LIST_PAGE_KEYS = 10_000;

/** Why run() returned control: the watch broke and the caller should relist (after the canary). */
export class WatchBroken extends Error {}

export class WatchStore<T> {
  private readonly known = new Map<string, KnownEntry<T>>();
  /** Keys whose current value is invalid: its bytes and why. */
  private readonly invalid = new Map<string, { hash: number; reason: RejectReason }>();
  /** The values in key order of insertion, rebuilt only after a change (views read it often). */
  private valuesCache: T[] | undefined;
  private hasSynced = false;
  /** Rejections since the store was created, by reason (running totals). */
  readonly rejected: Record<RejectReason, number> = emptyRejectCounters();
  /** Number of completed lists (1 = initial; more = relists after reconnects). */
  lists = 0;

  constructor(private readonly options: WatchStoreOptions<T>) {
    if (!options.prefix.endsWith("/")) throw new Error(`watch prefix "${options.prefix}" must end with "/"`);
  }

  get prefix(): string {
    return this.options.prefix;
  }

  get synced(): boolean {
    return this.hasSynced;
  }

  get size(): number {
    return this.known.size;
  }

  get(suffix: string): T | undefined {
    return this.known.get(suffix)?.value;
  }

  entries(): Map<string, T> {
    return new Map([...this.known].map(([suffix, entry]) => [suffix, entry.value]));
  }

  /**
   * The current values; the same array until the next change, so readers that only look (the
   * remote cluster's view, its status counts) share one copy instead of building their own.
   */
  values(): readonly T[] {
    if (!this.valuesCache) {
      const values: T[] = new Array(this.known.size);
      let i = 0;
      for (const entry of this.known.values()) values[i++] = entry.value;
      this.valuesCache = values;
    }
    return this.valuesCache;
  }

  get rejectedTotal(): number {
    return Object.values(this.rejected).reduce((a, b) => a + b, 0);
  }

  /** Keys whose current value is invalid, by reason. */
  get rejectedNow(): Partial<Record<RejectReason, number>> {
    const now: Partial<Record<RejectReason, number>> = {};
    for (const { reason } of this.invalid.values()) now[reason] = (now[reason] ?? 0) + 1;
    return now;
  }

  /**
   * Lists the prefix, reconciles, then watches until `signal` aborts (resolves) or the watch
   * breaks (rejects with WatchBroken or the etcd error) — then call run() again to resync.
   */
  async run(client: Etcd3, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const stale = new Set([...this.known.keys(), ...this.invalid.keys()]);
    const listed = await this.list(client, (kv) => {
      const suffix = this.suffixOf(kv);
      stale.delete(suffix);
      this.handlePut(suffix, kv.value);
    });
    for (const suffix of stale) this.handleDelete(suffix);
    this.lists++;
    if (!this.hasSynced) {
      this.hasSynced = true;
      this.options.onSynced?.();
    }
    if (signal.aborted) return;
    const clusterId = listed.clusterId;
    // watcher(), not create(): every handler is on before the stream opens. create() resolves only
    // on the first confirmation, and a stream that breaks before it is silently reopened — possibly
    // on a wiped etcd whose revisions restart below ours, where the watch would wait forever.
    const watcher = client
      .watch()
      .prefix(this.options.prefix)
      .startRevision(String(BigInt(listed.revision) + 1n))
      .watcher();
    await new Promise<void>((resolve, reject) => {
      let finished = false;
      const finish = (error?: Error) => {
        if (finished) return;
        finished = true;
        signal.removeEventListener("abort", onAbort);
        // a watch whose stream already broke fails to cancel: it is gone either way
        void watcher.cancel().catch(() => undefined);
        if (error) reject(error);
        else resolve();
      };
      const onAbort = () => finish();
      signal.addEventListener("abort", onAbort);
      watcher.on("put", (kv) => this.handlePut(this.suffixOf(kv), kv.value));
      watcher.on("delete", (kv) => this.handleDelete(this.suffixOf(kv)));
      // A watch resumed against another etcd (wiped and restarted) would silently miss state.
      watcher.on("connected", (response) => {
        if (response.header.cluster_id !== clusterId) {
          finish(
            new WatchBroken(`etcd cluster id changed from ${clusterId} to ${response.header.cluster_id}`),
          );
        }
      });
      watcher.on("disconnected", (error) =>
        finish(new WatchBroken(`watch disconnected: ${error.message}`, { cause: error })),
      );
      watcher.on("error", (error) => finish(error));
      watcher.on("end", () => finish(new WatchBroken("watch ended")));
    });
  }

  /**
   * Lists the prefix page by page, every page at the first page's revision (a consistent snapshot;
   * a revision compacted meanwhile fails the list, and the caller relists). Each page is handled
   * and dropped before the next is asked for.
   */
  private async list(
    client: Etcd3,
    onKv: (kv: IKeyValue) => void,
  ): Promise<{ revision: string; clusterId: string }> {
    const { end } = Range.prefix(this.options.prefix);
    let start: Buffer = Buffer.from(this.options.prefix);
    let snapshot: { revision: string; clusterId: string } | undefined;
    for (;;) {
      const request = client
        .getAll()
        .inRange(new Range(start, end))
        .limit(this.options.listPageKeys ?? LIST_PAGE_KEYS);
      if (snapshot) request.revision(snapshot.revision);
      const page = await request.exec();
      snapshot ??= { revision: page.header.revision, clusterId: page.header.cluster_id };
      for (const kv of page.kvs) onKv(kv);
      const last = page.kvs[page.kvs.length - 1];
      if (!page.more || !last) return snapshot;
      // the next page starts right after the last key (keys are ordered bytewise)
      start = Buffer.concat([last.key, Buffer.from([0])]);
    }
  }

  /** Reports every known entry deleted and forgets them (the remote cluster was disconnected). */
  drain(): void {
    this.invalid.clear();
    for (const suffix of [...this.known.keys()]) this.handleDelete(suffix);
  }

  private suffixOf(kv: IKeyValue): string {
    return kv.key.toString().slice(this.options.prefix.length);
  }

  private handlePut(suffix: string, rawValue: Buffer): void {
    const key = this.options.prefix + suffix;
    const hash = contentHash(rawValue);
    const previous = this.known.get(suffix);
    if (previous?.hash === hash || this.invalid.get(suffix)?.hash === hash) return;
    let value: T;
    try {
      value = this.options.decode(key, suffix, rawValue);
    } catch (error) {
      const rejection =
        error instanceof InvalidEntryError
          ? error
          : new InvalidEntryError(key, "wrong-type", String(error), { cause: error });
      this.rejected[rejection.reason]++;
      // the one line per rejection (the owner's logger binds the remote cluster and kind)
      this.options.log.warn(
        { key, reason: rejection.reason, detail: rejection.detail },
        "rejected remote kvstore entry",
      );
      this.options.onRejected?.(rejection);
      if (previous) this.handleDelete(suffix);
      this.invalid.set(suffix, { hash, reason: rejection.reason });
      return;
    }
    this.invalid.delete(suffix);
    this.known.set(suffix, { hash, value });
    this.valuesCache = undefined;
    this.options.onUpsert(suffix, value, previous?.value);
  }

  private handleDelete(suffix: string): void {
    this.invalid.delete(suffix);
    const previous = this.known.get(suffix);
    if (!previous) return;
    this.known.delete(suffix);
    this.valuesCache = undefined;
    this.options.onDelete(suffix, previous.value);
  }
}

export interface CanaryGateOptions {
  client: Etcd3;
  /** The remote cluster whose canary gates the store. */
  clusterName: string;
  /** Canary name, e.g. CANARY_NAMES.nodes. */
  canaryName: string;
  signal: AbortSignal;
  log: Logger;
  /** Called with true while waiting for the canary, false once it is there. */
  onWaiting?: (waiting: boolean) => void;
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/** Resolves once `key` exists (or the signal aborts); rides out etcd errors. */
export async function waitForKey(
  client: Etcd3,
  key: string,
  signal: AbortSignal,
  retryMs = 500,
  log?: Logger,
): Promise<void> {
  while (!signal.aborted) {
    try {
      const response = await client.get(key).exec();
      if (response.kvs.length > 0) return;
      // watcher(), not create(): see WatchStore.run — a reconnect to another etcd must not go unseen.
      const watcher = client
        .watch()
        .key(key)
        .startRevision(String(BigInt(response.header.revision) + 1n))
        .watcher();
      const clusterId = response.header.cluster_id;
      try {
        let onAbort = () => {};
        await new Promise<void>((resolve, reject) => {
          onAbort = () => resolve();
          signal.addEventListener("abort", onAbort, { once: true });
          watcher.on("put", () => resolve());
          watcher.on("connected", (confirmed) => {
            if (confirmed.header.cluster_id !== clusterId)
              reject(
                new WatchBroken(
                  `etcd cluster id changed from ${clusterId} to ${confirmed.header.cluster_id}`,
                ),
              );
          });
          watcher.on("disconnected", (error) => reject(error));
          watcher.on("error", (error) => reject(error));
        }).finally(() => signal.removeEventListener("abort", onAbort));
        return;
      } finally {
        // a watch whose stream already broke fails to cancel: it is gone either way
        await watcher.cancel().catch(() => undefined);
      }
    } catch (error) {
      // etcd unreachable or the watch broke: retried, and the session's probe reports unreachability
      log?.debug({ key, err: error }, "waiting for the key: etcd error; retrying");
      await sleep(retryMs, signal);
    }
  }
}

/** Waits ms or until the signal aborts; the abort listener goes with it (one store sleeps many times). */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Runs a watch store against one connection to a remote cluster advertising sync canaries: waits
 * for the canary, lists+watches, and after a broken watch waits for the canary again before
 * relisting (the remote etcd may have been wiped). Returns when the signal aborts.
 */
export async function watchWhenSynced<T>(store: WatchStore<T>, options: CanaryGateOptions): Promise<void> {
  const canaryKey = keys.canary(options.clusterName, options.canaryName);
  let failures = 0;
  while (!options.signal.aborted) {
    options.onWaiting?.(true);
    await waitForKey(options.client, canaryKey, options.signal, options.retryBaseMs, options.log);
    options.onWaiting?.(false);
    if (options.signal.aborted) return;
    try {
      await store.run(options.client, options.signal);
      failures = 0;
    } catch (error) {
      failures++;
      const delay = Math.min(
        options.retryMaxMs ?? 5_000,
        (options.retryBaseMs ?? 200) * 2 ** Math.min(failures - 1, 6),
      );
      options.log.info(
        { prefix: store.prefix, err: error, delayMs: delay },
        "watch broke; relisting after canary",
      );
      await sleep(delay, options.signal);
    }
  }
}
