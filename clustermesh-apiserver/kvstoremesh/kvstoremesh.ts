/**
 * KVStoreMesh (Cilium >= 1.16's default, https://github.com/cilium/cilium/blob/main/pkg/clustermesh/kvstoremesh/kvstoremesh.go):
 * the clustermesh-apiserver caches every configured remote cluster into its own etcd, so the
 * cluster's agents read remotes from their local etcd only. Level-triggered: setRemotes() gets
 * the whole configured set; new remotes start, changed ones reconnect, removed ones have their
 * cache deleted. A remote whose config is unusable is reported, never silently dropped.
 */
import type { Etcd3 } from "etcd3";
import type { KvStoreMeshRemoteStatus } from "../../lib/api/kvstoremesh-status.js";
import {
  CACHE_REACHABILITY_PREFIX,
  encodeCacheReachability,
} from "../../lib/clustermesh/cache-reachability.js";
import type { LocalCluster } from "../../lib/clustermesh/cluster-config.js";
import type { LifecycleSettings } from "../../lib/clustermesh/lifecycle.js";
import type { RemoteConnection, RemoteEntry } from "../../lib/clustermesh/remote-entries.js";
import type { DriftRepairMode } from "../../lib/kvstore/drift-monitor.js";
import { LeaseManager } from "../../lib/kvstore/leases.js";
import { CLUSTER_CONFIG_PREFIX } from "../../lib/kvstore/paths.js";
import { SyncStore } from "../../lib/kvstore/sync-store.js";
import type { Logger } from "../../lib/log.js";
import { deleteCache, orphanedCaches } from "./cache-removal.js";
import { CachedRemote } from "./cached-remote.js";

export interface KvStoreMeshOptions {
  local: LocalCluster;
  settings: LifecycleSettings;
  localEtcd: Etcd3;
  /** TTL of the cache keys' leases (kept alive while we run; a crashed mesh's cache expires). */
  leaseTtlSeconds?: number;
  driftRepair?: DriftRepairMode;
  log: Logger;
  connect?: (connection: RemoteConnection) => Etcd3;
}

export class KvStoreMesh {
  private readonly remotes = new Map<string, CachedRemote>();
  private readonly invalid = new Map<string, string>();
  /** Cluster id → the remote that reserved it. */
  private readonly ids = new Map<number, string>();
  private readonly leases: LeaseManager;
  private readonly clusterConfigs: SyncStore;
  /** The cached remotes' reachability mirrors (lib/clustermesh/cache-reachability.ts). */
  private readonly reachability: SyncStore;
  private started = false;
  private orphansCollected = false;
  /** setRemotes() calls run one after the other (a removal awaits the cache deletion). */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly options: KvStoreMeshOptions) {
    this.leases = new LeaseManager(options.localEtcd, {
      ttlSeconds: options.leaseTtlSeconds,
      log: options.log,
    });
    this.clusterConfigs = new SyncStore({
      client: options.localEtcd,
      leases: this.leases,
      prefix: CLUSTER_CONFIG_PREFIX,
      // the apiserver's own cluster config lives under the same prefix
      manageExisting: false,
      driftRepair: options.driftRepair,
      log: options.log.child({ store: "kvstoremesh-cluster-config" }),
    });
    this.reachability = new SyncStore({
      client: options.localEtcd,
      leases: this.leases,
      prefix: CACHE_REACHABILITY_PREFIX,
      // a removed remote's key is deleted by its removal; a previous run's expire with their lease
      manageExisting: false,
      driftRepair: options.driftRepair,
      log: options.log.child({ store: "kvstoremesh-reachability" }),
    });
  }

  async start(): Promise<void> {
    await this.clusterConfigs.start();
    this.clusterConfigs.synced();
    await this.reachability.start();
    this.reachability.synced();
    this.started = true;
  }

  /** The configured remotes (all of them); resolves once removed remotes' caches are deleted. */
  setRemotes(entries: readonly RemoteEntry[]): Promise<void> {
    const run = this.queue.then(() => this.apply(entries));
    // the next call waits for this one, failed or not; its error goes to this call's caller
    this.queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async apply(entries: readonly RemoteEntry[]): Promise<void> {
    if (!this.started) throw new Error("KvStoreMesh.setRemotes before start()");
    const wanted = new Map<string, RemoteConnection>();
    this.invalid.clear();
    for (const entry of entries) {
      if ("error" in entry) {
        this.invalid.set(entry.name, entry.error);
        this.options.log.warn(
          { cluster: entry.name, reason: entry.error },
          "remote cluster configuration unusable",
        );
      } else wanted.set(entry.name, entry.connection);
    }
    if (!this.orphansCollected) {
      // the first configuration: caches of remotes removed while we were down go now, not when
      // their leases expire (Cilium leaves them to the leases)
      this.orphansCollected = true;
      const configured = new Set([...wanted.keys(), ...this.invalid.keys(), this.options.local.name]);
      for (const name of await orphanedCaches(this.options.localEtcd, configured)) {
        this.options.log.info({ cluster: name }, "deleting the cache of a remote no longer configured");
        await deleteCache(this.options.localEtcd, name);
      }
    }
    for (const [name, remote] of [...this.remotes]) {
      if (wanted.has(name) || this.invalid.has(name)) continue;
      this.remotes.delete(name);
      this.reachability.delete(name);
      try {
        await remote.remove();
      } catch (error) {
        this.options.log.warn({ cluster: name, err: error }, "deleting the cache of a removed remote failed");
      }
    }
    for (const [name, connection] of wanted) {
      const existing = this.remotes.get(name);
      if (existing) {
        existing.update(connection);
        continue;
      }
      const remote = new CachedRemote(name, connection, {
        local: this.options.local,
        settings: this.options.settings,
        localEtcd: this.options.localEtcd,
        leases: this.leases,
        clusterConfigs: this.clusterConfigs,
        onReachability: (cluster, since) => {
          if (this.remotes.get(cluster) === remote)
            this.reachability.upsert(cluster, encodeCacheReachability(since));
        },
        reserveId: (cluster, id) => this.reserveId(cluster, id),
        releaseId: (cluster) => this.releaseId(cluster),
        driftRepair: this.options.driftRepair,
        log: this.options.log,
        connect: this.options.connect,
      });
      this.remotes.set(name, remote);
      remote.start();
    }
  }

  private reserveId(name: string, id: number): string | undefined {
    const user = this.ids.get(id);
    if (user !== undefined && user !== name) return `clusterID ${id} is already used by ${user}`;
    this.releaseId(name);
    this.ids.set(id, name);
    return undefined;
  }

  private releaseId(name: string): void {
    for (const [id, user] of this.ids) if (user === name) this.ids.delete(id);
  }

  cachedRemotes(): CachedRemote[] {
    return [...this.remotes.values()];
  }

  /** GET /v1/cluster: every configured remote, the unusable ones with why. */
  status(): KvStoreMeshRemoteStatus[] {
    const invalid = [...this.invalid].map(
      ([name, error]): KvStoreMeshRemoteStatus => ({
        name,
        connected: false,
        ready: false,
        status: `invalid configuration: ${error}`,
        config: { required: true, retrieved: false },
        synced: { nodes: false, services: false, identities: false, endpoints: false },
        "num-nodes": 0,
        "num-shared-services": 0,
        "num-identities": 0,
        "num-endpoints": 0,
        "num-failures": 0,
        "rejected-total": {},
        "rejected-now": {},
      }),
    );
    return [...this.cachedRemotes().map((remote) => remote.status()), ...invalid].sort((a, b) =>
      a.name < b.name ? -1 : 1,
    );
  }

  /** Shutdown: sessions end, caches stay for the next run. */
  async stop(): Promise<void> {
    await this.queue;
    await Promise.all(this.cachedRemotes().map((remote) => remote.stop()));
    await this.clusterConfigs.stop();
    await this.reachability.stop();
    this.leases.close();
  }
}
