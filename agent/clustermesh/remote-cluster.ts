/**
 * One connected remote cluster (Cilium's pkg/clustermesh remoteCluster), with an explicit lifecycle:
 *
 *   session loop:  connect (mTLS) → probe → read + validate cilium/cluster-config/<name> → reserve
 *                  its cluster id → per kind: wait for the sync canary, list + watch (WatchStore)
 *   session ends:  stop / new connection config / probe failures / heartbeat silence / etcd cluster
 *                  id change / invalid config → client closed, backoff, next session
 *   across sessions the watch stores keep their entries; a relist removes only what disappeared.
 *
 * Until a kind has been listed once by this process, the state persisted by the previous run is
 * served instead (agent restarts keep remote state). A remote unreachable longer than the backend
 * TTL has its service backends withdrawn (and restored when it answers again). stop({drain:true})
 * (the cluster was disconnected) removes everything of it.
 */
import type { Etcd3 } from "etcd3";
import type { RemoteClusterStatus } from "../../lib/api/agent-status.js";
import { cacheReachabilityKey, decodeCacheReachability } from "../../lib/clustermesh/cache-reachability.js";
import { type LocalCluster, remoteConfigProblem } from "../../lib/clustermesh/cluster-config.js";
import {
  backendsExpired,
  heartbeatSilent,
  type LifecycleSettings,
  reconnectDelayMs,
} from "../../lib/clustermesh/lifecycle.js";
import { connectRemote } from "../../lib/clustermesh/remote-client.js";
import type { RemoteConnection } from "../../lib/clustermesh/remote-entries.js";
import { sleep, withDeadline } from "../../lib/clustermesh/timing.js";
import { errorChainSummary } from "../../lib/error-chain.js";
import type { RejectReason } from "../../lib/kvstore/errors.js";
import {
  canaryName,
  type DataKind,
  HEARTBEAT_KEY,
  keys,
  type RemoteLayout,
  remoteWatchPrefix,
} from "../../lib/kvstore/paths.js";
import {
  type RemoteIdentity,
  remoteIdentityDecoder,
  remoteIpDecoder,
  remoteNodeDecoder,
  remoteServiceDecoder,
} from "../../lib/kvstore/remote-validation.js";
import { type ClusterConfig, decodeClusterConfig } from "../../lib/kvstore/values/cluster-config.js";
import type { IPIdentityPair } from "../../lib/kvstore/values/ipcache.js";
import type { NodeValue } from "../../lib/kvstore/values/node.js";
import type { ClusterService } from "../../lib/kvstore/values/service.js";
import { WatchStore, watchWhenSynced } from "../../lib/kvstore/watch-store.js";
import type { Logger } from "../../lib/log.js";
import type { RemoteClusterView } from "./merge.js";
import type { PersistedRemote } from "./persist.js";

const KINDS: readonly DataKind[] = ["nodes", "services", "identities", "ipcache"];
const PERSIST_DEBOUNCE_MS = 1_000;
const CONFIG_POLL_MS = 1_000;

interface Stores {
  nodes: WatchStore<NodeValue>;
  services: WatchStore<ClusterService>;
  identities: WatchStore<RemoteIdentity>;
  ipcache: WatchStore<IPIdentityPair>;
}

export interface RemoteClusterDeps {
  local: LocalCluster;
  settings: LifecycleSettings;
  log: Logger;
  /** Reserves `id` for `name`; returns why not (another remote uses it). */
  reserveId: (name: string, id: number) => string | undefined;
  releaseId: (name: string) => void;
  /** Something the datapath uses changed. */
  onChange: () => void;
  /** Every kind of a new set of stores listed: seconds since the session that created them began. */
  onInitialSync?: (seconds: number) => void;
  persisted?: PersistedRemote;
  persist: (state: PersistedRemote) => void;
  forget: () => void;
  /** Opens the etcd client (tests substitute it). */
  connect?: (connection: RemoteConnection) => Etcd3;
}

class SessionEnd extends Error {
  constructor(
    message: string,
    readonly failure: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export class RemoteCluster {
  private connection: RemoteConnection;
  private readonly lifetime = new AbortController();
  private session: AbortController | undefined;
  private sessionEndReason: SessionEnd | undefined;
  private loopDone: Promise<void> | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  private persistTimer: NodeJS.Timeout | undefined;
  private persisted: PersistedRemote | undefined;

  private stores: Stores | undefined;
  private clusterId: number | undefined;
  private config: ClusterConfig | undefined;
  private storesLayout: RemoteLayout = "state";
  private sessionListsAtStart: Record<DataKind, number> = {
    nodes: 0,
    services: 0,
    identities: 0,
    ipcache: 0,
  };
  private waitingCanary = new Set<DataKind>();
  private sessionStartedAt = 0;
  /** Start of the session whose new stores have not all listed yet (the initial sync's clock). */
  private initialSyncSince: number | undefined;

  private connected = false;
  private configRetrieved = false;
  private statusText = "waiting for initial connection";
  private failures = 0;
  private consecutiveFailures = 0;
  private lastFailure: string | undefined;
  private lastFailureAt: string | undefined;
  private unreachableSince: number | undefined;
  private lastHeartbeatAt = Date.now();
  private heartbeatRevision: string | undefined;
  private withdrawn = false;

  constructor(
    readonly name: string,
    connection: RemoteConnection,
    private readonly deps: RemoteClusterDeps,
  ) {
    this.connection = connection;
    this.persisted = deps.persisted;
    if (this.persisted) this.clusterId = this.persisted.clusterId;
  }

  private get log(): Logger {
    return this.deps.log;
  }

  start(): void {
    // a remote that never answers counts as unreachable from the first attempt on
    this.watchdog = setInterval(() => this.checkExpiry(), 500);
    this.loopDone = this.loop();
  }

  /** New connection settings (the Secret changed): reconnect only if something relevant changed. */
  update(connection: RemoteConnection): void {
    if (connection.fingerprint === this.connection.fingerprint) return;
    this.connection = connection;
    this.endSession(new SessionEnd("connection configuration changed", false));
  }

  /** Stops the cluster. `drain` (disconnected): forget every entry, the reserved id and the saved state. */
  async stop({ drain }: { drain: boolean }): Promise<void> {
    this.lifetime.abort();
    this.session?.abort();
    clearInterval(this.watchdog);
    clearTimeout(this.persistTimer);
    await this.loopDone;
    if (drain) {
      for (const kind of KINDS) this.stores?.[kind].drain();
      this.stores = undefined;
      this.persisted = undefined;
      this.deps.releaseId(this.name);
      this.deps.forget();
      this.deps.onChange();
    } else {
      this.saveNow();
    }
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
        client = (this.deps.connect ?? connectRemote)(this.connection);
        await this.runSession(client, session, tasks);
      } catch (error) {
        if (!this.sessionEndReason)
          this.sessionEndReason =
            error instanceof SessionEnd
              ? error
              : new SessionEnd((error as Error).message, true, { cause: error });
      } finally {
        session.abort();
        client?.close();
        // a store must never be run by two sessions at once; allSettled never rejects, so the only
        // error here is the deadline, and the next session starts anyway
        await withDeadline(Promise.allSettled(tasks), 5_000, "session tasks").catch((error) =>
          this.log.warn({ cluster: this.name, err: error }, "session tasks did not end in time"),
        );
        this.connected = false;
        this.configRetrieved = false;
        this.waitingCanary.clear();
      }
      if (this.lifetime.signal.aborted) break;
      const reason = this.sessionEndReason ?? new SessionEnd("session ended", true);
      if (reason.failure) {
        this.failures++;
        this.consecutiveFailures++;
        this.lastFailure = reason.message;
        this.lastFailureAt = new Date().toISOString();
        this.unreachableSince ??= Date.now();
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

  private async runSession(
    client: Etcd3,
    session: AbortController,
    tasks: Promise<unknown>[],
  ): Promise<void> {
    const { settings } = this.deps;
    const signal = session.signal;
    this.statusText = "connecting";
    this.sessionStartedAt = performance.now();
    let etcdClusterId: string | undefined;
    let lastRevision = -1n;
    let probeFailures = 0;
    this.lastHeartbeatAt = Date.now();
    this.heartbeatRevision = undefined;

    const probe = async (): Promise<void> => {
      try {
        const response = await withDeadline(
          client.get(HEARTBEAT_KEY).exec(),
          settings.probeTimeoutMs,
          "probe",
        );
        if (signal.aborted) return;
        const clusterId = response.header.cluster_id;
        etcdClusterId ??= clusterId;
        if (clusterId !== etcdClusterId) {
          this.endSession(
            new SessionEnd(`etcd cluster id changed from ${etcdClusterId} to ${clusterId}`, true),
          );
          return;
        }
        // A wiped etcd restarted on the same URLs keeps its cluster id; its revision going back is
        // what gives it away (a resumed watch would silently skip everything below the old revision).
        const headerRevision = BigInt(response.header.revision);
        if (headerRevision < lastRevision) {
          this.endSession(
            new SessionEnd(
              `etcd revision went back from ${lastRevision} to ${headerRevision}: the remote etcd was replaced`,
              true,
            ),
          );
          return;
        }
        lastRevision = headerRevision;
        const revision = response.kvs[0]?.mod_revision;
        if (revision !== undefined && revision !== this.heartbeatRevision) {
          if (this.heartbeatRevision !== undefined) this.lastHeartbeatAt = Date.now();
          this.heartbeatRevision = revision;
        }
        probeFailures = 0;
        // Behind a KVStoreMesh the local etcd answers while the remote may not: its mirror says
        // since when the remote is unreachable, and the backend TTL runs from there.
        const remoteUnreachableSince =
          this.config?.capabilities.cached && this.configRetrieved
            ? decodeCacheReachability(
                await withDeadline(
                  client.get(cacheReachabilityKey(this.name)).string(),
                  settings.probeTimeoutMs,
                  "cache reachability",
                ),
              )
            : undefined;
        if (signal.aborted) return;
        if (remoteUnreachableSince === undefined) this.markReachable();
        else {
          this.connected = true;
          this.unreachableSince = remoteUnreachableSince;
          this.checkExpiry();
        }
      } catch (error) {
        if (signal.aborted) return;
        probeFailures++;
        this.connected = false;
        this.unreachableSince ??= Date.now();
        this.statusText = `unreachable: ${errorChainSummary(error)}`;
        if (probeFailures >= settings.probeFailuresBeforeReconnect)
          this.endSession(new SessionEnd(`unreachable: ${(error as Error).message}`, true, { cause: error }));
      }
    };
    const probeLoop = async () => {
      while (!signal.aborted) {
        await probe();
        if (heartbeatSilent(this.lastHeartbeatAt, Date.now(), settings)) {
          this.endSession(
            new SessionEnd(
              `no heartbeat for ${Math.round((Date.now() - this.lastHeartbeatAt) / 1000)} s`,
              true,
            ),
          );
        }
        await sleep(settings.probeIntervalMs, signal);
      }
    };
    await probe();
    if (!this.connected) throw new SessionEnd(this.statusText, true);
    tasks.push(probeLoop());

    const config = await this.retrieveConfig(client, signal);
    if (signal.aborted) return;
    this.applyConfig(config);
    const stores = this.stores as Stores;
    this.consecutiveFailures = 0;
    this.statusText = "synchronizing";
    for (const kind of KINDS) {
      const store = stores[kind] as WatchStore<unknown>;
      this.sessionListsAtStart[kind] = store.lists;
      const onWaiting = (waiting: boolean) => {
        if (waiting) {
          // a (re)list is pending: this kind is not synced until it completes
          this.waitingCanary.add(kind);
          this.sessionListsAtStart[kind] = store.lists;
        } else this.waitingCanary.delete(kind);
      };
      tasks.push(
        config.capabilities.syncedCanaries
          ? watchWhenSynced(store, {
              client,
              clusterName: this.name,
              canaryName: canaryName(kind, layoutOf(config)),
              signal,
              log: this.log,
              onWaiting,
            })
          : this.watchImmediately(store, client, signal),
      );
    }
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  /** For remotes that do not advertise sync canaries (Cilium's NewWatchStoreManagerImmediate). */
  private async watchImmediately(
    store: WatchStore<unknown>,
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
        this.log.warn(
          { cluster: this.name, prefix: store.prefix, err: error, failures },
          "watch broke; relisting after a backoff",
        );
        await sleep(Math.min(5_000, 200 * 2 ** Math.min(failures, 5)), signal);
      }
    }
  }

  private markReachable(): void {
    const wasUnreachable = this.unreachableSince !== undefined;
    this.connected = true;
    this.unreachableSince = undefined;
    if (wasUnreachable) this.checkExpiry();
  }

  /** Polls cilium/cluster-config/<name> until it is there (Cilium: mandatory), then validates it. */
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
        // not fatal here: the probe decides whether the remote is gone; this says why we wait
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
      this.statusText = `waiting for the cluster configuration (${key} not found: check that the cluster name "${this.name}" is right and its clustermesh-apiserver runs)`;
      await sleep(CONFIG_POLL_MS, signal);
    }
  }

  /** What the agent keeps of this remote across a restart or a layout change: the current view. */
  private snapshot(): PersistedRemote | undefined {
    const view = this.view();
    if (!view) return undefined;
    return {
      version: 1,
      name: this.name,
      clusterId: view.id,
      savedAt: new Date().toISOString(),
      nodes: view.nodes,
      services: view.services,
      ipcache: view.ipcache,
    };
  }

  private applyConfig(config: ClusterConfig): void {
    const layout = layoutOf(config);
    if (this.stores && this.storesLayout !== layout) {
      // The remote moved behind (or out of) a KVStoreMesh: the same data now lives at other
      // prefixes. New stores relist it; until they have, the last view is served like a
      // persisted one (nothing is withdrawn meanwhile).
      this.log.info(
        { cluster: this.name, from: this.storesLayout, to: layout },
        "remote data layout changed",
      );
      const snapshot = this.snapshot();
      if (snapshot) this.persisted = snapshot;
      this.stores = undefined;
    }
    if (this.clusterId !== undefined && this.clusterId !== config.id) {
      // Cilium: "Remote Cluster ID changed: draining all known entries before reconnecting"
      this.log.warn(
        { cluster: this.name, from: this.clusterId, to: config.id },
        "remote cluster id changed; draining",
      );
      for (const kind of KINDS) this.stores?.[kind].drain();
      this.stores = undefined;
      this.persisted = undefined;
      this.deps.forget();
      this.deps.onChange();
    }
    this.clusterId = config.id;
    this.config = config;
    if (!this.stores) {
      this.stores = this.createStores(config.id, layout);
      this.storesLayout = layout;
      this.initialSyncSince = this.sessionStartedAt;
    }
  }

  private createStores(id: number, layout: RemoteLayout): Stores {
    const remote = { name: this.name, id, maxConnectedClusters: this.deps.local.maxConnectedClusters };
    const changed = () => {
      this.deps.onChange();
      this.schedulePersist();
    };
    // Until a kind is served from its store (values()), its entries change nothing the datapath
    // or the saved state sees: a first list of 50k entries is one change (onSynced), not 50k
    // datapath runs between its pages.
    const changedIfServed = (kind: DataKind) => () => {
      if (this.served(kind)) changed();
    };
    const common = <T>(kind: DataKind) => ({
      prefix: remoteWatchPrefix(kind, this.name, layout),
      onUpsert: changedIfServed(kind) as (suffix: string, value: T) => void,
      onDelete: changedIfServed(kind) as (suffix: string, value: T) => void,
      onSynced: () => {
        this.log.info({ cluster: this.name, kind }, "remote cluster kind synced");
        changed();
        this.initialSyncDone();
      },
      // the store logs each rejection once; this.log already names the remote cluster
      log: this.log.child({ kind }),
    });
    return {
      nodes: new WatchStore({ ...common<NodeValue>("nodes"), decode: remoteNodeDecoder(remote) }),
      services: new WatchStore({
        ...common<ClusterService>("services"),
        decode: remoteServiceDecoder(remote),
      }),
      identities: new WatchStore({
        ...common<RemoteIdentity>("identities"),
        decode: remoteIdentityDecoder(remote),
        // identities do not change the datapath
        onUpsert: () => undefined,
        onDelete: () => undefined,
      }),
      ipcache: new WatchStore({ ...common<IPIdentityPair>("ipcache"), decode: remoteIpDecoder(remote) }),
    };
  }

  private initialSyncDone(): void {
    if (this.initialSyncSince === undefined || !KINDS.every((kind) => this.listedOnce(kind))) return;
    this.deps.onInitialSync?.((performance.now() - this.initialSyncSince) / 1000);
    this.initialSyncSince = undefined;
  }

  // ---- TTL, heartbeat ----

  private checkExpiry(): void {
    const expired = backendsExpired(this.unreachableSince, Date.now(), this.deps.settings);
    if (expired === this.withdrawn) return;
    this.withdrawn = expired;
    this.log.warn(
      { cluster: this.name, ttlMs: this.deps.settings.backendTtlMs },
      expired
        ? "remote cluster unreachable longer than the backend TTL: its service backends are withdrawn"
        : "remote cluster reachable again: its service backends are restored",
    );
    this.deps.onChange();
  }

  // ---- state for the datapath, status, persistence ----

  private listedOnce(kind: DataKind): boolean {
    return (this.stores?.[kind].lists ?? 0) > 0;
  }

  /**
   * A kind's entries once listed, else the persisted ones. Ipcache entries and service backends are
   * judged against the remote's nodes (merge.ts: foreign-address), so they are served from the
   * same source as the nodes until the nodes are listed: each kind lists on its own, and Cilium's
   * clustermesh-apiserver may well have the ipcache synced before the nodes.
   */
  private served(kind: DataKind): boolean {
    return this.listedOnce(kind) && (kind === "nodes" || this.listedOnce("nodes"));
  }

  private values<T>(kind: "nodes" | "services" | "ipcache"): readonly T[] {
    if (this.served(kind)) {
      // the store's own array (shared until its next change): a view is taken at every datapath
      // run and status read, and copying 50k entries each time was the agent's main garbage
      const values = (this.stores as Stores)[kind].values() as readonly T[];
      this.dropPersistedOnceListed();
      return values;
    }
    return (this.persisted?.[kind] ?? []) as T[];
  }

  /** The persisted state is only a stand-in until every kind listed: then it is a dead copy. */
  private dropPersistedOnceListed(): void {
    if (this.persisted && KINDS.every((kind) => this.listedOnce(kind))) this.persisted = undefined;
  }

  view(): RemoteClusterView | undefined {
    const id = this.clusterId;
    if (id === undefined) return undefined;
    return {
      name: this.name,
      id,
      nodes: this.values<NodeValue>("nodes"),
      services: this.values<ClusterService>("services"),
      ipcache: this.values<IPIdentityPair>("ipcache"),
      backendsWithdrawn: this.withdrawn,
    };
  }

  identities(): readonly RemoteIdentity[] {
    return this.stores?.identities.values() ?? [];
  }

  private schedulePersist(): void {
    if (this.persistTimer || this.lifetime.signal.aborted) return;
    this.persistTimer = setTimeout(() => {
      this.persistTimer = undefined;
      this.saveNow();
    }, PERSIST_DEBOUNCE_MS);
  }

  private saveNow(): void {
    const snapshot = this.snapshot();
    if (!snapshot || !this.stores) return;
    try {
      this.deps.persist(snapshot);
    } catch (error) {
      this.log.warn({ cluster: this.name, err: error }, "could not persist remote cluster state");
    }
  }

  private syncedThisSession(kind: DataKind): boolean {
    return this.configRetrieved && (this.stores?.[kind].lists ?? 0) > this.sessionListsAtStart[kind];
  }

  /** Validation rejections since the agent started, by reason (running totals). */
  rejectedTotal(): Partial<Record<RejectReason, number>> {
    return this.sumOverKinds((store) => store.rejected);
  }

  /** Keys whose current value failed validation, by reason. */
  rejectedNow(): Partial<Record<RejectReason, number>> {
    return this.sumOverKinds((store) => store.rejectedNow);
  }

  private sumOverKinds(
    counts: (store: WatchStore<unknown>) => Partial<Record<RejectReason, number>>,
  ): Partial<Record<RejectReason, number>> {
    const total: Partial<Record<RejectReason, number>> = {};
    for (const kind of KINDS) {
      const store = this.stores?.[kind] as WatchStore<unknown> | undefined;
      for (const [reason, count] of Object.entries(store ? counts(store) : {})) {
        if (count) total[reason as RejectReason] = (total[reason as RejectReason] ?? 0) + count;
      }
    }
    return total;
  }

  status(): RemoteClusterStatus {
    const synced = {
      nodes: this.syncedThisSession("nodes"),
      services: this.syncedThisSession("services"),
      identities: this.syncedThisSession("identities"),
      endpoints: this.syncedThisSession("ipcache"),
    };
    const ready = this.connected && this.configRetrieved && Object.values(synced).every(Boolean);
    let text = this.statusText;
    if (this.connected && this.configRetrieved) {
      text =
        this.waitingCanary.size > 0
          ? `waiting for sync canaries: ${[...this.waitingCanary].join(", ")}`
          : ready
            ? "connected and synced"
            : "synchronizing";
    }
    const view = this.view();
    return {
      name: this.name,
      connected: this.connected,
      ready,
      status: this.withdrawn ? `${text} (service backends withdrawn: unreachable longer than the TTL)` : text,
      config: {
        required: true,
        retrieved: this.configRetrieved,
        ...(this.config
          ? { clusterId: this.config.id, syncedCanaries: this.config.capabilities.syncedCanaries }
          : {}),
      },
      synced,
      numNodes: view?.nodes.length ?? 0,
      numSharedServices: view?.services.filter((s) => s.shared).length ?? 0,
      numIdentities: this.stores?.identities.size ?? 0,
      numEndpoints: view?.ipcache.length ?? 0,
      numFailures: this.failures,
      ...(this.lastFailure ? { lastFailure: this.lastFailure, lastFailureAt: this.lastFailureAt } : {}),
      rejectedTotal: this.rejectedTotal(),
      rejectedNow: this.rejectedNow(),
      // what the merge does not use is known to the manager, which fills it in
      ignoredNow: {},
      backendsWithdrawn: this.withdrawn,
    };
  }
}

/**
 * A remote whose cluster config says `cached: true` is served by a KVStoreMesh: its data is read
 * from the cache layout (Cilium's remoteCluster.Run: `adapter = kvstore.StateToCachePrefix`).
 */
function layoutOf(config: ClusterConfig): RemoteLayout {
  return config.capabilities.cached ? "cache" : "state";
}
