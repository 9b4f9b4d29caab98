/**
 * One remote cluster cached by KVStoreMesh (Cilium's kvstoremesh remoteCluster + reflectors):
 *
 *   session loop:  connect (mTLS) → probe → read + validate cilium/cluster-config/<name> → reserve
 *                  its cluster id → write the cached cluster config locally → per kind: wait for the
 *                  remote's sync canary, list + watch (WatchStore, the agent's validation) and copy
 *                  every accepted entry into the local cache (SyncStore: leased, drift-repaired,
 *                  its canary written once the kind's first list is in etcd)
 *   session ends:  stop / new connection config / probe failures / heartbeat silence / the remote
 *                  etcd replaced (cluster id or revision) / invalid config → backoff, next session
 *   across sessions the cache is kept as it is; a relist (after the remote's canary: a wiped remote
 *   is refilled first) deletes only what disappeared, so nothing flaps.
 *
 * remove() (the remote left the config) deletes its cache keys, canaries and cluster config;
 * stop() (shutdown) leaves them to the next run, which adopts them.
 */
import type { Etcd3 } from "etcd3";
import type { KvStoreMeshRemoteStatus } from "../../lib/api/kvstoremesh-status.js";
import { type LocalCluster, remoteConfigProblem } from "../../lib/clustermesh/cluster-config.js";
import { etcdReplacedReason, type SeenEtcd } from "../../lib/clustermesh/etcd-replaced.js";
import {
  heartbeatSilent,
  type LifecycleSettings,
  reconnectDelayMs,
} from "../../lib/clustermesh/lifecycle.js";
import { connectRemote } from "../../lib/clustermesh/remote-client.js";
import type { RemoteConnection } from "../../lib/clustermesh/remote-entries.js";
import { sleep, withDeadline } from "../../lib/clustermesh/timing.js";
import { errorChainSummary } from "../../lib/error-chain.js";
import type { DriftRepairMode } from "../../lib/kvstore/drift-monitor.js";
import type { RejectReason } from "../../lib/kvstore/errors.js";
import type { LeaseManager } from "../../lib/kvstore/leases.js";
import {
  canaryName,
  type DataKind,
  HEARTBEAT_KEY,
  keys,
  remoteWatchPrefix,
} from "../../lib/kvstore/paths.js";
import {
  type EntryDecoder,
  type ExpectedCluster,
  remoteIdentityDecoder,
  remoteIpDecoder,
  remoteNodeDecoder,
  remoteServiceDecoder,
} from "../../lib/kvstore/remote-validation.js";
import { SyncStore } from "../../lib/kvstore/sync-store.js";
import {
  type ClusterConfig,
  decodeClusterConfig,
  encodeClusterConfig,
} from "../../lib/kvstore/values/cluster-config.js";
import { WatchStore, watchWhenSynced } from "../../lib/kvstore/watch-store.js";
import type { Logger } from "../../lib/log.js";
import { deleteCache } from "./cache-removal.js";
import { CACHED_KINDS, cachedClusterConfig, cacheStorePrefix, sourceLayout } from "./layout.js";
import { validatedRaw } from "./validated-raw.js";

const CONFIG_POLL_MS = 1_000;

const DECODERS: Record<DataKind, (remote: ExpectedCluster) => EntryDecoder<unknown>> = {
  nodes: remoteNodeDecoder,
  services: remoteServiceDecoder,
  identities: remoteIdentityDecoder,
  ipcache: remoteIpDecoder,
};

export interface CachedRemoteDeps {
  local: LocalCluster;
  settings: LifecycleSettings;
  /** The local etcd the cache is written to (the apiserver's admin client). */
  localEtcd: Etcd3;
  leases: LeaseManager;
  /** Holds the cilium/cluster-config/<remote> keys of the cached remotes. */
  clusterConfigs: SyncStore;
  /** The remote's unreachability changed (undefined: it answers): mirrored for the agents' TTL. */
  onReachability: (name: string, unreachableSince: number | undefined) => void;
  /** Reserves `id` for `name`; returns why not (another remote uses it). */
  reserveId: (name: string, id: number) => string | undefined;
  releaseId: (name: string) => void;
  driftRepair?: DriftRepairMode;
  log: Logger;
  /** Opens the remote's etcd client (tests substitute it). */
  connect?: (connection: RemoteConnection) => Etcd3;
}

/** Ends a session: `failure` counts and backs off; a configuration change reconnects at once. */
export class SessionEnd extends Error {
  constructor(
    message: string,
    readonly failure: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "SessionEnd";
  }
}

export class CachedRemote {
  private connection: RemoteConnection;
  private readonly lifetime = new AbortController();
  private session: AbortController | undefined;
  private sessionEndReason: SessionEnd | undefined;
  private loopDone: Promise<void> | undefined;

  /** Local writers, one per kind; started once, before the first session. */
  private readonly caches = new Map<DataKind, SyncStore>();
  private cachesStarted = false;
  /** Remote readers, one per kind; recreated when the remote's cluster id changes. */
  private watches: Map<DataKind, WatchStore<string>> | undefined;
  private readonly listsAtSessionStart = new Map<DataKind, number>();
  private config: ClusterConfig | undefined;

  private connected = false;
  private configRetrieved = false;
  private statusText = "waiting for initial connection";
  private failures = 0;
  private consecutiveFailures = 0;
  private lastFailure: string | undefined;
  /** Unix seconds of the last failure (Cilium's remote_cluster_last_failure_ts). */
  lastFailureTs = 0;
  private lastHeartbeatAt = Date.now();
  /** Since when the remote does not answer (a remote never reached counts from the start). */
  private unreachableSince: number | undefined = Date.now();

  constructor(
    readonly name: string,
    connection: RemoteConnection,
    private readonly deps: CachedRemoteDeps,
  ) {
    this.connection = connection;
    for (const kind of CACHED_KINDS) {
      this.caches.set(
        kind,
        new SyncStore({
          client: deps.localEtcd,
          leases: deps.leases,
          prefix: cacheStorePrefix(kind, name),
          canary: { clusterName: name, syncedKey: canaryName(kind, "cache") },
          driftRepair: deps.driftRepair,
          log: deps.log.child({ cluster: name, cache: kind }),
        }),
      );
    }
  }

  private get log(): Logger {
    return this.deps.log;
  }

  start(): void {
    this.deps.onReachability(this.name, this.unreachableSince);
    this.loopDone = this.loop();
  }

  private setReachable(reachable: boolean): void {
    if (reachable === (this.unreachableSince === undefined)) return;
    this.unreachableSince = reachable ? undefined : Date.now();
    this.deps.onReachability(this.name, this.unreachableSince);
  }

  /** New connection settings: reconnect only if something relevant changed. */
  update(connection: RemoteConnection): void {
    if (connection.fingerprint === this.connection.fingerprint) return;
    this.connection = connection;
    this.endSession(new SessionEnd("connection configuration changed", false));
  }

  /** Shutdown: the session ends, the cache stays (leased) for the next run to adopt. */
  async stop(): Promise<void> {
    this.lifetime.abort();
    this.session?.abort();
    await this.loopDone;
    await Promise.all([...this.caches.values()].map((cache) => cache.stop()));
  }

  /**
   * The remote left the configuration: its cluster config first (readers stop trusting the
   * cache), then its canaries, then every cached key — also keys a previous run left behind.
   */
  async remove(): Promise<void> {
    await this.stop();
    this.deps.releaseId(this.name);
    this.deps.clusterConfigs.delete(this.name);
    await deleteCache(this.deps.localEtcd, this.name);
    this.log.info({ cluster: this.name }, "remote cluster removed: its cache is deleted");
  }

  // ---- session loop ----

  private async loop(): Promise<void> {
    while (!this.lifetime.signal.aborted) {
      const session = new AbortController();
      this.session = session;
      this.sessionEndReason = undefined;
      const tasks: Promise<unknown>[] = [];
      let client: Etcd3 | undefined;
      try {
        if (!this.cachesStarted) {
          await Promise.all([...this.caches.values()].map((cache) => cache.start()));
          this.cachesStarted = true;
        }
        client = (this.deps.connect ?? connectRemote)(this.connection);
        await this.runSession(client, session.signal, tasks);
      } catch (error) {
        this.sessionEndReason ??=
          error instanceof SessionEnd
            ? error
            : new SessionEnd(errorChainSummary(error), true, { cause: error });
      } finally {
        session.abort();
        client?.close();
        // a watch store must never be run by two sessions at once
        await withDeadline(Promise.allSettled(tasks), 5_000, "session tasks").catch((error) =>
          this.log.warn({ cluster: this.name, err: error }, "session tasks did not end in time"),
        );
        this.connected = false;
        this.configRetrieved = false;
      }
      if (this.lifetime.signal.aborted) break;
      const reason = this.sessionEndReason ?? new SessionEnd("session ended", true);
      if (reason.failure) {
        this.failures++;
        this.consecutiveFailures++;
        this.lastFailure = reason.message;
        this.lastFailureTs = Math.floor(Date.now() / 1000);
        this.setReachable(false);
      }
      const delay = reason.failure ? reconnectDelayMs(this.consecutiveFailures, this.deps.settings) : 0;
      this.statusText = `${reason.message}; reconnecting${delay ? ` in ${(delay / 1000).toFixed(1)} s` : ""}`;
      this.log.warn(
        { cluster: this.name, reason: reason.message, delayMs: delay },
        "remote cluster session ended",
      );
      await sleep(delay, this.lifetime.signal);
    }
  }

  private endSession(reason: SessionEnd): void {
    if (!this.session || this.session.signal.aborted) return;
    this.sessionEndReason ??= reason;
    this.session.abort();
  }

  private async runSession(client: Etcd3, signal: AbortSignal, tasks: Promise<unknown>[]): Promise<void> {
    const { settings } = this.deps;
    this.statusText = "connecting";
    const seen: SeenEtcd = { clusterId: undefined, revision: -1n };
    let heartbeatRevision: string | undefined;
    let probeFailures = 0;
    this.lastHeartbeatAt = Date.now();

    const probe = async (): Promise<void> => {
      try {
        const response = await withDeadline(
          client.get(HEARTBEAT_KEY).exec(),
          settings.probeTimeoutMs,
          "probe",
        );
        if (signal.aborted) return;
        const replaced = etcdReplacedReason(seen, response.header);
        if (replaced) return this.endSession(new SessionEnd(replaced, true));
        const revision = response.kvs[0]?.mod_revision;
        if (revision !== undefined && revision !== heartbeatRevision) {
          if (heartbeatRevision !== undefined) this.lastHeartbeatAt = Date.now();
          heartbeatRevision = revision;
        }
        probeFailures = 0;
        this.connected = true;
        this.setReachable(true);
      } catch (error) {
        if (signal.aborted) return;
        probeFailures++;
        this.connected = false;
        this.setReachable(false);
        this.statusText = `unreachable: ${errorChainSummary(error)}`;
        if (probeFailures >= settings.probeFailuresBeforeReconnect)
          this.endSession(new SessionEnd(`unreachable: ${(error as Error).message}`, true, { cause: error }));
      }
    };
    await probe();
    if (!this.connected) throw new SessionEnd(this.statusText, true);
    tasks.push(
      (async () => {
        while (!signal.aborted) {
          await sleep(settings.probeIntervalMs, signal);
          if (signal.aborted) return;
          await probe();
          if (heartbeatSilent(this.lastHeartbeatAt, Date.now(), settings)) {
            const silentFor = Math.round((Date.now() - this.lastHeartbeatAt) / 1000);
            this.endSession(new SessionEnd(`no heartbeat for ${silentFor} s`, true));
          }
        }
      })(),
    );

    const config = await this.retrieveConfig(client, signal);
    if (signal.aborted) return;
    const watches = this.applyConfig(config);
    this.consecutiveFailures = 0;
    this.statusText = "synchronizing";
    const layout = sourceLayout(config);
    for (const kind of CACHED_KINDS) {
      const store = watches.get(kind) as WatchStore<string>;
      this.listsAtSessionStart.set(kind, store.lists);
      tasks.push(
        config.capabilities.syncedCanaries
          ? watchWhenSynced(store, {
              client,
              clusterName: this.name,
              canaryName: canaryName(kind, layout),
              signal,
              log: this.log.child({ cluster: this.name, kind }),
              // a (re)list is pending: this kind is not synced until it completes
              onWaiting: (waiting) => waiting && this.listsAtSessionStart.set(kind, store.lists),
            })
          : this.watchImmediately(store, client, signal),
      );
    }
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  /** Remotes without sync canaries (Cilium's NewWatchStoreManagerImmediate). */
  private async watchImmediately(
    store: WatchStore<string>,
    client: Etcd3,
    signal: AbortSignal,
  ): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      try {
        await store.run(client, signal);
        failures = 0;
      } catch (error) {
        failures++;
        this.log.warn({ cluster: this.name, prefix: store.prefix, err: error }, "watch broke; relisting");
        await sleep(Math.min(5_000, 200 * 2 ** Math.min(failures, 5)), signal);
      }
    }
  }

  /** Polls cilium/cluster-config/<name> until it is there (mandatory), then validates it. */
  private async retrieveConfig(client: Etcd3, signal: AbortSignal): Promise<ClusterConfig> {
    const key = keys.clusterConfig(this.name);
    for (;;) {
      if (signal.aborted) throw new SessionEnd("stopped", false);
      let raw: string | null = null;
      try {
        raw = await withDeadline(
          client.get(key).string(),
          this.deps.settings.probeTimeoutMs,
          "cluster config",
        );
      } catch (error) {
        // the probe decides whether the remote is gone; this says why we wait
        this.log.debug({ cluster: this.name, key, err: error }, "reading the cluster configuration failed");
      }
      if (raw !== null) {
        let config: ClusterConfig;
        try {
          config = decodeClusterConfig(key, raw);
        } catch (error) {
          throw new SessionEnd(`invalid cluster configuration: ${(error as Error).message}`, true, {
            cause: error,
          });
        }
        const problem =
          remoteConfigProblem(this.name, config, this.deps.local, new Map()) ??
          this.deps.reserveId(this.name, config.id);
        if (problem) throw new SessionEnd(`invalid cluster configuration: ${problem}`, true);
        this.configRetrieved = true;
        return config;
      }
      this.statusText = `waiting for the cluster configuration (${key} not found)`;
      await sleep(CONFIG_POLL_MS, signal);
    }
  }

  private applyConfig(config: ClusterConfig): Map<DataKind, WatchStore<string>> {
    if (
      this.watches &&
      (this.config?.id !== config.id || sourceLayout(this.config) !== sourceLayout(config))
    ) {
      // Another cluster id: every cached entry was validated against the old one (Cilium drains
      // too). Another layout: the same data lives at other prefixes; the relist re-adds it.
      this.log.warn(
        { cluster: this.name, from: this.config?.id, to: config.id },
        "remote cluster id or layout changed; draining its cache",
      );
      for (const store of this.watches.values()) store.drain();
      this.watches = undefined;
    }
    this.config = config;
    this.deps.clusterConfigs.upsert(this.name, encodeClusterConfig(cachedClusterConfig(config)));
    this.watches ??= this.createWatches(config);
    return this.watches;
  }

  private createWatches(config: ClusterConfig): Map<DataKind, WatchStore<string>> {
    const remote = {
      name: this.name,
      id: config.id,
      maxConnectedClusters: this.deps.local.maxConnectedClusters,
    };
    const layout = sourceLayout(config);
    const watches = new Map<DataKind, WatchStore<string>>();
    for (const kind of CACHED_KINDS) {
      const cache = this.caches.get(kind) as SyncStore;
      watches.set(
        kind,
        new WatchStore<string>({
          prefix: remoteWatchPrefix(kind, this.name, layout),
          decode: validatedRaw(DECODERS[kind](remote)),
          onUpsert: (suffix, raw) => cache.upsert(suffix, raw),
          onDelete: (suffix) => cache.delete(suffix),
          onSynced: () => {
            this.log.info({ cluster: this.name, kind }, "remote cluster kind listed; cache synced");
            cache.synced();
          },
          log: this.log.child({ cluster: this.name, kind }),
        }),
      );
    }
    return watches;
  }

  // ---- status ----

  /** Listed in this session and its cache canary written. */
  syncedKind(kind: DataKind): boolean {
    const store = this.watches?.get(kind);
    return (
      this.configRetrieved &&
      store !== undefined &&
      store.lists > (this.listsAtSessionStart.get(kind) ?? 0) &&
      (this.caches.get(kind)?.isSynced ?? false)
    );
  }

  get ready(): boolean {
    return this.connected && this.configRetrieved && CACHED_KINDS.every((kind) => this.syncedKind(kind));
  }

  get numFailures(): number {
    return this.failures;
  }

  /** The local cache writer of `kind` (its stats feed the kvstore_sync metrics). */
  cache(kind: DataKind): SyncStore {
    return this.caches.get(kind) as SyncStore;
  }

  entries(kind: DataKind): number {
    return this.watches?.get(kind)?.size ?? 0;
  }

  rejected(current: boolean): Partial<Record<RejectReason, number>> {
    const total: Partial<Record<RejectReason, number>> = {};
    for (const store of this.watches?.values() ?? []) {
      for (const [reason, count] of Object.entries(current ? store.rejectedNow : store.rejected)) {
        if (count) total[reason as RejectReason] = (total[reason as RejectReason] ?? 0) + count;
      }
    }
    return total;
  }

  status(): KvStoreMeshRemoteStatus {
    const ready = this.ready;
    let text = this.statusText;
    if (this.connected && this.configRetrieved) text = ready ? "connected and synced" : "synchronizing";
    return {
      name: this.name,
      connected: this.connected,
      ready,
      status: text,
      config: {
        required: true,
        retrieved: this.configRetrieved,
        ...(this.config
          ? { "cluster-id": this.config.id, "sync-canaries": this.config.capabilities.syncedCanaries }
          : {}),
      },
      synced: {
        nodes: this.syncedKind("nodes"),
        services: this.syncedKind("services"),
        identities: this.syncedKind("identities"),
        endpoints: this.syncedKind("ipcache"),
      },
      "num-nodes": this.entries("nodes"),
      "num-shared-services": this.entries("services"),
      "num-identities": this.entries("identities"),
      "num-endpoints": this.entries("ipcache"),
      "num-failures": this.failures,
      ...(this.lastFailure ? { "last-failure": this.lastFailure } : {}),
      "rejected-total": this.rejected(false),
      "rejected-now": this.rejected(true),
    };
  }
}
