/**
 * The agent's remote-cluster manager: follows the configured remote clusters (from the Secrets),
 * runs one RemoteCluster per cluster, reserves cluster ids, and exposes what the datapath, the
 * status API and the metrics need. Disconnecting a cluster (its key removed) drains all its state;
 * stopping the agent drains nothing (the pinned datapath keeps serving, the state is persisted).
 */

import { join } from "node:path";
import type { Etcd3 } from "etcd3";
import type { RemoteClusterStatus } from "../../lib/api/agent-status.js";
import type { LocalCluster } from "../../lib/clustermesh/cluster-config.js";
import type { LifecycleSettings } from "../../lib/clustermesh/lifecycle.js";
import type { RemoteConnection, RemoteEntry } from "../../lib/clustermesh/remote-entries.js";
import type { Logger } from "../../lib/log.js";
import type { NodeInfo } from "../datapath/desired.js";
import { ChangeLatency } from "./change-latency.js";
import type { RemoteDatapathDrift } from "./datapath-drift.js";
import { DropLedger } from "./drops.js";
import { type MeshDatapathInputs, meshDatapathInputs, type RemoteClusterView } from "./merge.js";
import { RemoteStateDir } from "./persist.js";
import { RemoteCluster } from "./remote-cluster.js";

export interface ClusterMeshOptions {
  local: LocalCluster;
  settings: LifecycleSettings;
  /** The agent's --state-dir: remote state is kept below it across restarts. */
  stateDir: string;
  log: Logger;
  onChange: () => void;
  connect?: (connection: RemoteConnection) => Etcd3;
}

/** Durations in seconds, per remote cluster. */
export interface MeshObservers {
  initialSync?: (cluster: string, seconds: number) => void;
  changeToDatapath?: (cluster: string, seconds: number) => void;
}

export class ClusterMeshManager {
  private readonly clusters = new Map<string, RemoteCluster>();
  private readonly invalid = new Map<string, string>();
  private readonly idOwners = new Map<number, string>();
  private readonly stateDir: RemoteStateDir;
  private lastRefused = new Map<string, Record<string, number>>();
  private lastIgnored = new Map<string, Record<string, number>>();
  private readonly drops: DropLedger;
  private configured = false;
  private readonly changeLatency = new ChangeLatency();
  private observers: MeshObservers = {};
  /** cluster → when a change from it was last written to the BPF maps (ISO) */
  private readonly lastApplied = new Map<string, string>();

  constructor(private readonly options: ClusterMeshOptions) {
    this.stateDir = new RemoteStateDir(join(options.stateDir, "clustermesh"), options.log);
    this.drops = new DropLedger(options.log);
  }

  /** Applies the configured set of remote clusters (level-triggered: call with the whole set). */
  setRemotes(entries: readonly RemoteEntry[]): void {
    const wanted = new Map(entries.map((e) => [e.name, e]));
    for (const [name, cluster] of this.clusters) {
      const entry = wanted.get(name);
      if (!entry || !("connection" in entry)) {
        this.clusters.delete(name);
        this.drops.forget(name);
        this.lastApplied.delete(name);
        this.options.log.info(
          { cluster: name },
          "remote cluster removed from the configuration: draining its state",
        );
        void cluster.stop({ drain: true });
      }
    }
    this.invalid.clear();
    for (const entry of entries) {
      if (!("connection" in entry)) {
        this.invalid.set(entry.name, entry.error);
        continue;
      }
      const existing = this.clusters.get(entry.name);
      if (existing) {
        existing.update(entry.connection);
        continue;
      }
      this.options.log.info(
        { cluster: entry.name, endpoints: entry.connection.endpoints },
        "connecting to remote cluster",
      );
      const cluster = new RemoteCluster(entry.name, entry.connection, {
        local: this.options.local,
        settings: this.options.settings,
        log: this.options.log.child({ remoteCluster: entry.name }),
        reserveId: (name, id) => this.reserveId(name, id),
        releaseId: (name) => this.releaseId(name),
        onChange: () => {
          this.changeLatency.changed(entry.name);
          this.options.onChange();
        },
        onInitialSync: (seconds) => this.observers.initialSync?.(entry.name, seconds),
        persisted: this.stateDir.load(entry.name),
        persist: (state) => this.stateDir.save(state),
        forget: () => this.stateDir.remove(entry.name),
        connect: this.options.connect,
      });
      this.clusters.set(entry.name, cluster);
      cluster.start();
    }
    if (!this.configured) {
      this.configured = true;
      // saved state of clusters disconnected while the agent was down
      for (const name of this.stateDir.names()) {
        if (!this.clusters.has(name)) this.stateDir.remove(name);
      }
    }
    this.options.onChange();
  }

  private reserveId(name: string, id: number): string | undefined {
    const owner = this.idOwners.get(id);
    if (owner !== undefined && owner !== name) return `clusterID ${id} is already used by ${owner}`;
    this.releaseId(name);
    this.idOwners.set(id, name);
    return undefined;
  }

  private releaseId(name: string): void {
    for (const [id, owner] of this.idOwners) if (owner === name) this.idOwners.delete(id);
  }

  views(): RemoteClusterView[] {
    return [...this.clusters.values()]
      .map((c) => c.view())
      .filter((v): v is RemoteClusterView => v !== undefined);
  }

  /**
   * The datapath's share of the mesh; remembers what was refused and ignored for the status. An
   * entry the merge starts refusing is logged (once: not again at every merge while it stays
   * refused) and counted.
   */
  datapathInputs(localNodes: readonly NodeInfo[]): MeshDatapathInputs {
    this.changeLatency.taken();
    const inputs = meshDatapathInputs(localNodes, this.views());
    const counts = (map: Map<string, Partial<Record<string, number>>>) =>
      new Map([...map].map(([name, reasons]) => [name, reasons as Record<string, number>]));
    this.lastRefused = counts(inputs.refused);
    this.lastIgnored = counts(inputs.ignored);
    this.drops.record(inputs.dropped);
    return inputs;
  }

  /** The connected remote clusters (configured with a valid connection), by name. */
  names(): string[] {
    return [...this.clusters.keys()].sort();
  }

  /** drift: published versus programmed per cluster (datapath-drift.ts), when the maps could be read. */
  status(drift?: ReadonlyMap<string, RemoteDatapathDrift>): RemoteClusterStatus[] {
    const statuses: RemoteClusterStatus[] = [...this.clusters.values()].map((cluster) => {
      const status = cluster.status();
      const datapath = drift?.get(cluster.name);
      const lastAppliedAt = this.lastApplied.get(cluster.name);
      return {
        ...status,
        rejectedTotal: addCounts(status.rejectedTotal, this.drops.totalsOf(cluster.name)),
        rejectedNow: addCounts(status.rejectedNow, this.lastRefused.get(cluster.name)),
        ignoredNow: { ...(this.lastIgnored.get(cluster.name) ?? {}) },
        ...(datapath ? { datapath: { ...datapath, ...(lastAppliedAt ? { lastAppliedAt } : {}) } } : {}),
      };
    });
    for (const [name, error] of this.invalid) {
      statuses.push({
        name,
        connected: false,
        ready: false,
        status: `configuration invalid: ${error}`,
        config: { required: true, retrieved: false },
        synced: { nodes: false, services: false, identities: false, endpoints: false },
        numNodes: 0,
        numSharedServices: 0,
        numIdentities: 0,
        numEndpoints: 0,
        numFailures: 0,
        lastFailure: error,
        rejectedTotal: {},
        rejectedNow: {},
        ignoredNow: {},
      });
    }
    return statuses.sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  identities(): { id: number; labels: string[]; cluster: string }[] {
    return [...this.clusters.values()]
      .flatMap((cluster) =>
        cluster.identities().map((identity) => ({
          id: identity.id,
          labels: identity.labels.map((l) => `${l.source}:${l.key}=${l.value}`),
          cluster: cluster.name,
        })),
      )
      .sort((a, b) => a.id - b.id);
  }

  /** Where the manager reports its measured durations (the metrics' histograms). */
  measure(observers: MeshObservers): void {
    this.observers = observers;
  }

  /**
   * The datapath run that took this manager's inputs wrote its BPF maps (ok) or failed: stops the
   * change → programmed clocks, or puts them back for the retry.
   */
  datapathProgrammed(ok: boolean): void {
    if (!ok) {
      this.changeLatency.failed();
      return;
    }
    const at = new Date().toISOString();
    for (const [cluster, seconds] of this.changeLatency.programmed()) {
      this.lastApplied.set(cluster, at);
      this.observers.changeToDatapath?.(cluster, seconds);
    }
  }

  /** Distinct shared services (namespace/name) the remote clusters publish. */
  globalServices(): number {
    const names = new Set<string>();
    for (const view of this.views())
      for (const service of view.services)
        if (service.shared) names.add(`${service.namespace}/${service.name}`);
    return names.size;
  }

  /** Agent shutdown: no draining; the datapath stays programmed and the state is saved. */
  async stop(): Promise<void> {
    await Promise.all([...this.clusters.values()].map((c) => c.stop({ drain: false })));
  }
}

function addCounts(a: Record<string, number>, b: Record<string, number> | undefined): Record<string, number> {
  const sum = { ...a };
  for (const [reason, count] of Object.entries(b ?? {})) if (count) sum[reason] = (sum[reason] ?? 0) + count;
  return sum;
}
