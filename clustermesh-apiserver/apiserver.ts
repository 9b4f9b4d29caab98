/**
 * The clustermesh-apiserver of one cluster: publishes the cluster's nodes, identities, endpoint IPs
 * and global services from its Kubernetes API into its own etcd, in Cilium's format.
 *
 * Lifecycle (start/stop):
 *   1. etcd users/roles/auth (idempotent);
 *   2. sync stores list their prefixes (adopting unchanged keys of a previous run);
 *   3. cluster config and heartbeat are written (leased; heartbeat every minute);
 *   4. informers start; each store is marked synced() once all informers it depends on have
 *      delivered their initial list → stale keys deleted → canary written → /readyz ready.
 * Conversions are pure (convert/*); this module only routes events to them and to the stores.
 */

import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1EndpointSlice,
  type V1Namespace,
  type V1Node,
  type V1Service,
} from "@kubernetes/client-node";
import type { Etcd3 } from "etcd3";
import {
  MESH_GROUP,
  MESH_VERSION,
  type MeshEndpoint,
  type MeshIdentity,
  type MeshNode,
  MeshResource,
} from "../lib/api/crds.js";
import { APISERVER_METRICS } from "../lib/api/metrics.js";
import { isGlobalNamespace, serviceNameOf } from "../lib/api/service-annotations.js";
import { type Informer, startInformer } from "../lib/k8s/informer.js";
import { DRIFT_KINDS } from "../lib/kvstore/drift.js";
import type { DriftRepairMode } from "../lib/kvstore/drift-monitor.js";
import { LeaseManager } from "../lib/kvstore/leases.js";
import {
  CANARY_NAMES,
  CLUSTER_CONFIG_PREFIX,
  type DataKind,
  IDENTITY_IDS_PREFIX,
  IP_ENTRIES_PREFIX,
  NODES_PREFIX,
  SERVICES_PREFIX,
} from "../lib/kvstore/paths.js";
import { SyncStore } from "../lib/kvstore/sync-store.js";
import { encodeClusterConfig, ownClusterConfig } from "../lib/kvstore/values/cluster-config.js";
import { encodeIpIdentityPair, ipPairKeySuffix } from "../lib/kvstore/values/ipcache.js";
import { encodeNode } from "../lib/kvstore/values/node.js";
import { encodeService } from "../lib/kvstore/values/service.js";
import { rfc3339 } from "../lib/kvstore/values/timestamp.js";
import type { Logger } from "../lib/log.js";
import { IpOwnership, ipEntriesFor } from "./convert/endpoint.js";
import { identityValueFor } from "./convert/identity.js";
import { nodeValueFor } from "./convert/node.js";
import { clusterServiceFor } from "./convert/service.js";
import { etcdAccessPlan, initEtcdAccess, markClusterConfigRequired } from "./etcd-init.js";
import { apiserverMetrics, type MetricFamily } from "./metrics.js";
import { startServiceExportsStore } from "./service-exports.js";

export interface ApiServerOptions {
  clusterName: string;
  clusterId: number;
  maxConnectedClusters: number;
  kubeConfig: KubeConfig;
  /** Client with the admin-<cluster> certificate (root role). */
  etcd: Etcd3;
  /** Peers whose agents connect with CN remote-<peer> (Cilium's "cluster" auth mode). */
  remotePeers?: string[];
  heartbeatIntervalMs?: number;
  clusterConfigRefreshMs?: number;
  leaseTtlSeconds?: number;
  /** How the stores notice drift in etcd (default "watch"; see lib/kvstore/drift-monitor.ts). */
  driftRepair?: DriftRepairMode;
  driftPollIntervalMs?: number;
  /** More metric families on the same registry (the KVStoreMesh's). */
  extraMetrics?: readonly MetricFamily[];
  log: Logger;
}

type InformerName =
  | "services"
  | "endpointslices"
  | "namespaces"
  | "nodes"
  | "meshnodes"
  | "meshendpoints"
  | "meshidentities";

/** Which informers must have synced before a store's initial set is complete. */
const STORE_DEPENDENCIES: Record<DataKind, InformerName[]> = {
  services: ["services", "endpointslices", "namespaces"],
  nodes: ["nodes", "meshnodes"],
  identities: ["meshidentities", "namespaces"],
  ipcache: ["meshendpoints", "namespaces"],
};

const nsName = (o: KubernetesObject) => `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;

export class ClusterMeshApiServer {
  private readonly log: Logger;
  private leases: LeaseManager | undefined;
  private readonly stores = new Map<DataKind, SyncStore>();
  private clusterConfigStore: SyncStore | undefined;
  private heartbeatStore: SyncStore | undefined;
  private serviceExportsStore: SyncStore | undefined;
  private readonly informers = new Map<InformerName, Informer<KubernetesObject>>();
  private readonly syncedInformers = new Set<InformerName>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private configTimer: NodeJS.Timeout | undefined;
  private readonly ipOwnership = new IpOwnership();
  /** EndpointSlices by "ns/service" → slice name → slice. */
  private readonly slicesByService = new Map<string, Map<string, V1EndpointSlice>>();
  private readonly serviceOfSlice = new Map<string, string>();
  private readonly k8sEvents = new Map<string, number>();
  private heartbeats = 0;
  private conversionErrors = 0;
  private stopped = false;
  /** Seconds from the process start until every kind was synced (Cilium's bootstrap_seconds). */
  private bootstrapSeconds: number | undefined;
  private readonly metricsRegistry;

  constructor(private readonly options: ApiServerOptions) {
    this.log = options.log;
    this.metricsRegistry = apiserverMetrics(
      [...this.metricFamilies(), ...(options.extraMetrics ?? [])],
      (metric, error) => this.log.warn({ metric, err: error }, "metric collector failed"),
    );
  }

  private get cluster() {
    return { name: this.options.clusterName, id: this.options.clusterId };
  }

  async start(): Promise<void> {
    const { etcd, clusterName } = this.options;
    await initEtcdAccess(etcd, etcdAccessPlan(clusterName, this.options.remotePeers), this.log);
    await markClusterConfigRequired(etcd);
    this.leases = new LeaseManager(etcd, { ttlSeconds: this.options.leaseTtlSeconds, log: this.log });
    const storePrefixes: Record<DataKind, string> = {
      nodes: `${NODES_PREFIX}/${clusterName}`,
      services: `${SERVICES_PREFIX}/${clusterName}`,
      identities: IDENTITY_IDS_PREFIX,
      ipcache: IP_ENTRIES_PREFIX,
    };
    for (const kind of Object.keys(storePrefixes) as DataKind[]) {
      this.stores.set(
        kind,
        new SyncStore({
          client: etcd,
          leases: this.leases,
          prefix: storePrefixes[kind],
          canary: { clusterName, syncedKey: CANARY_NAMES[kind] },
          driftRepair: this.options.driftRepair,
          driftPollIntervalMs: this.options.driftPollIntervalMs,
          log: this.log.child({ store: kind }),
        }),
      );
    }
    const synced = [...this.stores.values()].map((store) => store.whenSynced());
    void Promise.all(synced).then(() => {
      this.bootstrapSeconds ??= process.uptime();
    });
    this.clusterConfigStore = new SyncStore({
      client: etcd,
      leases: this.leases,
      prefix: CLUSTER_CONFIG_PREFIX,
      manageExisting: false,
      driftRepair: this.options.driftRepair,
      driftPollIntervalMs: this.options.driftPollIntervalMs,
      log: this.log.child({ store: "cluster-config" }),
    });
    this.heartbeatStore = new SyncStore({
      client: etcd,
      leases: this.leases,
      prefix: "cilium",
      manageExisting: false,
      // rewritten every heartbeat interval anyway; a watch on "cilium/" would see every key
      driftRepair: "off",
      log: this.log.child({ store: "heartbeat" }),
    });
    await Promise.all([...this.stores.values()].map((store) => store.start()));
    await this.clusterConfigStore.start();
    await this.heartbeatStore.start();
    this.clusterConfigStore.upsert(
      clusterName,
      encodeClusterConfig(ownClusterConfig(this.options.clusterId, this.options.maxConnectedClusters)),
    );
    this.clusterConfigStore.synced();
    // Cilium re-asserts its cluster config every 5 minutes, in case someone deleted it.
    this.configTimer = setInterval(
      () => this.clusterConfigStore?.rewrite(clusterName),
      this.options.clusterConfigRefreshMs ?? 5 * 60_000,
    );
    this.configTimer.unref();
    this.beat();
    this.heartbeatStore.synced();
    this.heartbeatTimer = setInterval(() => this.beat(), this.options.heartbeatIntervalMs ?? 60_000);
    this.heartbeatTimer.unref();
    this.serviceExportsStore = await startServiceExportsStore(etcd, this.leases, clusterName, this.log);
    this.startInformers();
  }

  private beat(): void {
    this.heartbeats++;
    this.heartbeatStore?.upsert(".heartbeat", rfc3339());
  }

  private startInformers(): void {
    const kc = this.options.kubeConfig;
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const crdPath = (plural: string) => `/apis/${MESH_GROUP}/${MESH_VERSION}/${plural}`;
    const listCluster = (plural: string) => () =>
      custom.listClusterCustomObject({ group: MESH_GROUP, version: MESH_VERSION, plural }) as Promise<
        KubernetesListObject<KubernetesObject>
      >;
    this.addInformer(
      "services",
      "/api/v1/services",
      () => core.listServiceForAllNamespaces(),
      (o) => this.syncService(nsName(o)),
    );
    this.addInformer(
      "endpointslices",
      "/apis/discovery.k8s.io/v1/endpointslices",
      () => discovery.listEndpointSliceForAllNamespaces(),
      (o, deleted) => this.onEndpointSlice(o as V1EndpointSlice, deleted),
    );
    this.addInformer(
      "namespaces",
      "/api/v1/namespaces",
      () => core.listNamespace(),
      (o) => this.onNamespace(o.metadata?.name ?? ""),
    );
    this.addInformer(
      "nodes",
      "/api/v1/nodes",
      () => core.listNode(),
      (o) => this.syncNode(o.metadata?.name ?? ""),
    );
    this.addInformer(
      "meshnodes",
      crdPath(MeshResource.node.plural),
      listCluster(MeshResource.node.plural),
      (o) => this.syncNode(o.metadata?.name ?? ""),
    );
    this.addInformer(
      "meshidentities",
      crdPath(MeshResource.identity.plural),
      listCluster(MeshResource.identity.plural),
      (o, deleted) => this.syncIdentity(o as MeshIdentity, deleted),
    );
    this.addInformer(
      "meshendpoints",
      crdPath(MeshResource.endpoint.plural),
      () =>
        custom.listCustomObjectForAllNamespaces({
          group: MESH_GROUP,
          version: MESH_VERSION,
          plural: MeshResource.endpoint.plural,
        }) as Promise<KubernetesListObject<KubernetesObject>>,
      (o, deleted) => this.syncEndpoint(o as MeshEndpoint, deleted),
    );
  }

  private addInformer(
    name: InformerName,
    path: string,
    list: () => Promise<KubernetesListObject<KubernetesObject>>,
    onChange: (object: KubernetesObject, deleted: boolean) => void,
  ): void {
    const informer = startInformer<KubernetesObject>({
      name,
      kubeConfig: this.options.kubeConfig,
      path,
      list,
      // a CRD not created yet must not hold up readiness
      notServedAsEmpty: true,
      onChange: (object, event) => {
        const key = `${name}/${event}`;
        this.k8sEvents.set(key, (this.k8sEvents.get(key) ?? 0) + 1);
        try {
          onChange(object, event === "delete");
        } catch (error) {
          this.conversionErrors++;
          this.log.warn({ informer: name, object: nsName(object), err: error }, "conversion failed");
        }
      },
      onListed: (first) => {
        if (first) this.onInformerSynced(name);
      },
      log: this.log,
      restartDelayMs: name.startsWith("mesh") ? 2_000 : 1_000,
    });
    this.informers.set(name, informer);
  }

  private onInformerSynced(name: InformerName): void {
    this.syncedInformers.add(name);
    this.log.debug({ informer: name }, "informer synced");
    for (const [kind, dependencies] of Object.entries(STORE_DEPENDENCIES) as [DataKind, InformerName[]][]) {
      if (dependencies.includes(name) && dependencies.every((d) => this.syncedInformers.has(d))) {
        this.stores.get(kind)?.synced();
      }
    }
  }

  private informer<T extends KubernetesObject>(name: InformerName): Informer<T> | undefined {
    return this.informers.get(name) as Informer<T> | undefined;
  }

  private namespaceIsGlobal(namespace: string | undefined): boolean {
    if (!namespace) return true;
    return isGlobalNamespace(this.informer<V1Namespace>("namespaces")?.get(namespace));
  }

  // --- services ---

  private onEndpointSlice(slice: V1EndpointSlice, deleted: boolean): void {
    const sliceKey = nsName(slice);
    const service = serviceNameOf(slice);
    const serviceKey = service ? `${slice.metadata?.namespace ?? ""}/${service}` : undefined;
    const previous = this.serviceOfSlice.get(sliceKey);
    if (previous && previous !== serviceKey) {
      this.slicesByService.get(previous)?.delete(sliceKey);
      this.syncService(previous);
    }
    if (deleted || !serviceKey) {
      this.serviceOfSlice.delete(sliceKey);
      if (serviceKey) this.slicesByService.get(serviceKey)?.delete(sliceKey);
    } else {
      this.serviceOfSlice.set(sliceKey, serviceKey);
      let slices = this.slicesByService.get(serviceKey);
      if (!slices) {
        slices = new Map();
        this.slicesByService.set(serviceKey, slices);
      }
      slices.set(sliceKey, slice);
    }
    if (serviceKey) this.syncService(serviceKey);
  }

  private onNamespace(namespace: string): void {
    for (const service of this.informer<V1Service>("services")?.list() ?? []) {
      if (service.metadata?.namespace === namespace) this.syncService(nsName(service));
    }
    for (const endpoint of this.informer<MeshEndpoint>("meshendpoints")?.list() ?? []) {
      if (endpoint.metadata?.namespace === namespace) this.syncEndpoint(endpoint, false);
    }
    for (const identity of this.informer<MeshIdentity>("meshidentities")?.list() ?? [])
      this.syncIdentity(identity, false);
  }

  private syncService(key: string): void {
    const [namespace, name] = key.split("/");
    const store = this.stores.get("services");
    const service = this.informer<V1Service>("services")?.get(name, namespace);
    const slices = [...(this.slicesByService.get(key)?.values() ?? [])];
    const value = service
      ? clusterServiceFor(
          this.cluster,
          service,
          slices,
          this.informer<V1Namespace>("namespaces")?.get(namespace),
        )
      : undefined;
    if (value) store?.upsert(key, encodeService(value));
    else store?.delete(key);
  }

  // --- nodes ---

  private syncNode(name: string): void {
    const core = this.informer<V1Node>("nodes")?.get(name);
    const mesh = this.informer<MeshNode>("meshnodes")?.get(name);
    const value = nodeValueFor(this.cluster, name, core, mesh);
    const store = this.stores.get("nodes");
    if (value) store?.upsert(name, encodeNode(value));
    else store?.delete(name);
  }

  // --- identities ---

  private syncIdentity(identity: MeshIdentity, deleted: boolean): void {
    const store = this.stores.get("identities");
    const name = identity.metadata?.name ?? "";
    if (deleted) {
      store?.delete(name);
      return;
    }
    const converted = identityValueFor(this.cluster, identity);
    if (!converted.ok) {
      this.log.debug({ identity: name, reason: converted.reason }, "identity not published");
      store?.delete(name);
      return;
    }
    if (this.namespaceIsGlobal(converted.namespace)) store?.upsert(String(converted.id), converted.labels);
    else store?.delete(String(converted.id));
  }

  // --- endpoint IPs ---

  private syncEndpoint(endpoint: MeshEndpoint, deleted: boolean): void {
    const entries =
      deleted || !this.namespaceIsGlobal(endpoint.metadata?.namespace) ? [] : ipEntriesFor(endpoint);
    const store = this.stores.get("ipcache");
    for (const ip of this.ipOwnership.set(nsName(endpoint), entries)) {
      const published = this.ipOwnership.published(ip);
      if (published) store?.upsert(ipPairKeySuffix(published), encodeIpIdentityPair(published));
      else store?.delete(ip);
    }
  }

  // --- status ---

  readiness(): { ready: boolean; synced: Record<DataKind, boolean> } {
    const synced = Object.fromEntries(
      [...this.stores].map(([kind, store]) => [kind, store.isSynced]),
    ) as Record<DataKind, boolean>;
    return { ready: this.stores.size > 0 && Object.values(synced).every(Boolean), synced };
  }

  /** Unhealthy when etcd keep-alives keep failing (leases, and so every key, would expire). */
  health(): { ok: boolean; detail: string } {
    const failures = this.leases?.keepAliveFailures ?? 0;
    if (this.stopped) return { ok: false, detail: "stopped" };
    return failures >= 3
      ? { ok: false, detail: `etcd lease keep-alive failed ${failures} times` }
      : { ok: true, detail: "ok" };
  }

  /** GET /metrics */
  metrics(): Promise<string> {
    return this.metricsRegistry.render();
  }

  private metricFamilies(): MetricFamily[] {
    const stores = () => [...this.stores];
    const repairable = (): [string, SyncStore][] =>
      this.clusterConfigStore ? [...stores(), ["cluster-config", this.clusterConfigStore]] : stores();
    return [
      {
        name: APISERVER_METRICS.kvstoreKeys,
        help: "Keys this apiserver wants in etcd, per kind.",
        type: "gauge",
        labelNames: ["kind"],
        collect: () => stores().map(([kind, s]) => ({ labels: { kind }, value: s.stats.desired })),
      },
      {
        name: APISERVER_METRICS.kvstoreWritesTotal,
        help: "etcd puts per kind.",
        type: "counter",
        labelNames: ["kind"],
        collect: () => stores().map(([kind, s]) => ({ labels: { kind }, value: s.stats.puts })),
      },
      {
        name: APISERVER_METRICS.kvstoreDeletesTotal,
        help: "etcd deletes per kind.",
        type: "counter",
        labelNames: ["kind"],
        collect: () => stores().map(([kind, s]) => ({ labels: { kind }, value: s.stats.deletes })),
      },
      {
        name: APISERVER_METRICS.kvstoreSkippedUnchangedTotal,
        help: "Upserts skipped because the value was unchanged.",
        type: "counter",
        labelNames: ["kind"],
        collect: () => stores().map(([kind, s]) => ({ labels: { kind }, value: s.stats.skippedUnchanged })),
      },
      {
        name: APISERVER_METRICS.kvstoreErrorsTotal,
        help: "Failed etcd writes (retried).",
        type: "counter",
        labelNames: ["kind"],
        collect: () => stores().map(([kind, s]) => ({ labels: { kind }, value: s.stats.errors })),
      },
      {
        name: APISERVER_METRICS.kvstoreRepairsTotal,
        help: "Keys repaired after someone else deleted (missing), changed (altered) or added (stray) them, per kind.",
        type: "counter",
        labelNames: ["kind", "drift"],
        collect: () =>
          repairable().flatMap(([kind, s]) =>
            DRIFT_KINDS.map((drift) => ({ labels: { kind, drift }, value: s.stats.repairs[drift] })),
          ),
      },
      {
        name: APISERVER_METRICS.kvstoreCanaryRepairsTotal,
        help: "Sync canaries rewritten after someone else deleted (missing) or changed (altered) them, per kind.",
        type: "counter",
        labelNames: ["kind", "drift"],
        collect: () =>
          stores().flatMap(([kind, s]) =>
            (["missing", "altered"] as const).map((drift) => ({
              labels: { kind, drift },
              value: s.stats.canaryRepairs[drift],
            })),
          ),
      },
      {
        name: APISERVER_METRICS.kvstoreInitialSyncCompleted,
        help: "1 once the initial sync of a kind is written and its canary set.",
        type: "gauge",
        labelNames: ["kind"],
        collect: () => stores().map(([kind, s]) => ({ labels: { kind }, value: s.isSynced ? 1 : 0 })),
      },
      {
        name: APISERVER_METRICS.k8sEventsTotal,
        help: "Kubernetes informer events per resource and action.",
        type: "counter",
        labelNames: ["resource", "action"],
        collect: () =>
          [...this.k8sEvents].map(([key, value]) => {
            const [resource, action] = key.split("/");
            return { labels: { resource, action }, value };
          }),
      },
      {
        name: APISERVER_METRICS.conversionErrorsTotal,
        help: "Objects that failed conversion.",
        type: "counter",
        labelNames: [],
        collect: () => [{ value: this.conversionErrors }],
      },
      {
        name: APISERVER_METRICS.heartbeatsTotal,
        help: "Heartbeats written.",
        type: "counter",
        labelNames: [],
        collect: () => [{ value: this.heartbeats }],
      },
      {
        name: APISERVER_METRICS.leases,
        help: "etcd leases held.",
        type: "gauge",
        labelNames: [],
        collect: () => [{ value: this.leases?.leaseCount ?? 0 }],
      },
      {
        name: APISERVER_METRICS.ready,
        help: "1 when every kind is synced (/readyz).",
        type: "gauge",
        labelNames: [],
        collect: () => [{ value: this.readiness().ready ? 1 : 0 }],
      },
      {
        name: APISERVER_METRICS.bootstrapSeconds,
        help: "Duration in seconds to complete bootstrap",
        type: "gauge",
        labelNames: ["source_cluster"],
        collect: () =>
          this.bootstrapSeconds === undefined
            ? []
            : [{ labels: { source_cluster: this.options.clusterName }, value: this.bootstrapSeconds }],
      },
    ];
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.heartbeatTimer);
    clearInterval(this.configTimer);
    await Promise.all(
      [...this.informers.values()].map((informer) =>
        informer.stop().catch((error) => this.log.warn({ err: error }, "stopping an informer failed")),
      ),
    );
    for (const store of [
      ...this.stores.values(),
      this.clusterConfigStore,
      this.heartbeatStore,
      this.serviceExportsStore,
    ])
      await store?.stop();
    // Leases are left to expire (not revoked) so a restart adopts unchanged keys.
    this.leases?.close();
  }
}
