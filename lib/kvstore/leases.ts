/**
 * etcd leases for a writer, like Cilium's etcd lease manager: every key written by a sync store is
 * attached to a lease; at most `maxKeysPerLease` (1000, etcd issue #15993) keys share one; all
 * leases are kept alive together; a lease etcd no longer knows (expired, revoked, etcd wiped) is
 * reported as lost with the keys it carried, so their writers can re-create them.
 *
 * Leases are not revoked on close: after a restart the next process adopts the still-alive leases
 * of the keys it finds (adopt), so unchanged keys need no rewrite.
 */
import type { Etcd3 } from "etcd3";
import type { Logger } from "../log.js";

export const DEFAULT_LEASE_TTL_SECONDS = 15 * 60;
export const MAX_KEYS_PER_LEASE = 1000;

export interface LeaseManagerOptions {
  ttlSeconds?: number;
  maxKeysPerLease?: number;
  /** Defaults to a third of the TTL. */
  keepAliveIntervalMs?: number;
  log: Logger;
}

export type LeaseLostListener = (leaseId: string, keys: string[]) => void;

export class LeaseManager {
  private readonly ttlSeconds: number;
  private readonly maxKeysPerLease: number;
  private readonly keysByLease = new Map<string, Set<string>>();
  private readonly leaseOfKey = new Map<string, string>();
  /** The lease new keys go to until it is full. */
  private current: string | undefined;
  private granting: Promise<string> | undefined;
  private readonly listeners = new Set<LeaseLostListener>();
  private timer: NodeJS.Timeout | undefined;
  private keepAliveRunning = false;
  private closed = false;
  keepAliveFailures = 0;

  constructor(
    private readonly client: Etcd3,
    private readonly options: LeaseManagerOptions,
  ) {
    this.ttlSeconds = options.ttlSeconds ?? DEFAULT_LEASE_TTL_SECONDS;
    this.maxKeysPerLease = options.maxKeysPerLease ?? MAX_KEYS_PER_LEASE;
    const interval = options.keepAliveIntervalMs ?? Math.max(1000, (this.ttlSeconds * 1000) / 3);
    this.timer = setInterval(() => void this.keepAliveAll(), interval);
    this.timer.unref();
  }

  onLost(listener: LeaseLostListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get leaseCount(): number {
    return this.keysByLease.size;
  }

  keysOn(leaseId: string): number {
    return this.keysByLease.get(leaseId)?.size ?? 0;
  }

  leaseOf(key: string): string | undefined {
    return this.leaseOfKey.get(key);
  }

  /** The lease to write `key` with: its current lease if it has one, else one with room. */
  async leaseFor(key: string): Promise<string> {
    const existing = this.leaseOfKey.get(key);
    if (existing !== undefined) return existing;
    let leaseId = this.current;
    if (leaseId === undefined || this.keysOn(leaseId) >= this.maxKeysPerLease) {
      leaseId = await this.grant();
    }
    // Another caller may have filled it while we waited for the grant.
    if (this.keysOn(leaseId) >= this.maxKeysPerLease) return this.leaseFor(key);
    this.attach(key, leaseId);
    return leaseId;
  }

  /** Forgets a key (deleted by its writer), freeing its slot. */
  release(key: string): void {
    const leaseId = this.leaseOfKey.get(key);
    if (leaseId === undefined) return;
    this.leaseOfKey.delete(key);
    this.keysByLease.get(leaseId)?.delete(key);
  }

  /**
   * Takes over keep-alive of a lease a previous process created for `key`, if etcd still has it.
   * Returns false when the lease is gone (the caller must rewrite the key).
   */
  async adopt(key: string, leaseId: string): Promise<boolean> {
    if (!this.keysByLease.has(leaseId)) {
      const response = await this.client.leaseClient.leaseTimeToLive({ ID: leaseId });
      if (Number(response.TTL) <= 0) return false;
      this.keysByLease.set(leaseId, new Set());
    }
    this.attach(key, leaseId);
    return true;
  }

  private attach(key: string, leaseId: string): void {
    this.release(key);
    this.leaseOfKey.set(key, leaseId);
    let keys = this.keysByLease.get(leaseId);
    if (!keys) {
      keys = new Set();
      this.keysByLease.set(leaseId, keys);
    }
    keys.add(key);
  }

  private grant(): Promise<string> {
    this.granting ??= this.client.leaseClient
      .leaseGrant({ TTL: this.ttlSeconds })
      .then((response) => {
        this.keysByLease.set(response.ID, new Set());
        this.current = response.ID;
        this.options.log.debug({ lease: response.ID, ttl: this.ttlSeconds }, "granted lease");
        return response.ID;
      })
      .finally(() => {
        this.granting = undefined;
      });
    return this.granting;
  }

  /**
   * Marks a lease lost (etcd said it does not exist): forgets it and tells the writers which keys
   * went with it. Also called by writers whose put failed with "requested lease not found".
   */
  markLost(leaseId: string): void {
    const keys = this.keysByLease.get(leaseId);
    if (!keys) return;
    this.keysByLease.delete(leaseId);
    if (this.current === leaseId) this.current = undefined;
    for (const key of keys) this.leaseOfKey.delete(key);
    this.options.log.warn({ lease: leaseId, keys: keys.size }, "lease lost; its keys will be re-created");
    for (const listener of this.listeners) listener(leaseId, [...keys]);
  }

  /** One keep-alive round for every lease; leases etcd reports with TTL <= 0 are lost. */
  async keepAliveAll(): Promise<void> {
    if (this.keepAliveRunning || this.closed || this.keysByLease.size === 0) return;
    this.keepAliveRunning = true;
    try {
      const ids = [...this.keysByLease.keys()];
      const stream = await this.client.leaseClient.leaseKeepAlive();
      const ttls = new Map<string, number>();
      try {
        await new Promise<void>((resolve, reject) => {
          const timeout = setTimeout(() => reject(new Error("lease keep-alive timed out")), 5_000);
          stream.on("data", (response: { ID: string; TTL: string }) => {
            ttls.set(response.ID, Number(response.TTL));
            if (ttls.size === ids.length) {
              clearTimeout(timeout);
              resolve();
            }
          });
          stream.on("error", (error: Error) => {
            clearTimeout(timeout);
            reject(error);
          });
          for (const id of ids) stream.write({ ID: id });
        });
      } finally {
        stream.end();
      }
      this.keepAliveFailures = 0;
      for (const [id, ttl] of ttls) if (ttl <= 0) this.markLost(id);
    } catch (error) {
      // etcd unreachable: try again next round; leases survive outages shorter than their TTL.
      this.keepAliveFailures++;
      this.options.log.warn({ err: error }, "lease keep-alive failed");
    } finally {
      this.keepAliveRunning = false;
    }
  }

  /** Stops keep-alives. Leases stay in etcd until their TTL runs out (see adopt). */
  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

export function isLeaseNotFound(error: unknown): boolean {
  return error instanceof Error && /requested lease not found/.test(error.message);
}
