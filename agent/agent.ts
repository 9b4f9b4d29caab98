/**
 * The agent: wires the modules together (constructor injection) and runs the start-up sequence that
 * makes a restart non-disruptive:
 *   1. serve the unix socket at once (CNI calls get "try again later" until ready)
 *   2. load the datapath: pinned maps and links of a previous run are adopted, nothing is cleared
 *   3. create the CRDs if absent, start the informers
 *   4. wait for this node's pod CIDR; restore endpoints (records → IPAM, current ifindexes)
 *   5. VXLAN device + tunnel program, socket LB on the pods' cgroup root, re-attach endpoints
 *   6. wait for every informer to sync; only then remove what is stale (endpoints of deleted pods,
 *      orphan links and pins) and reconcile the maps (which deletes stale services/backends/ipcache)
 *   7. ready: CNI STATUS succeeds, ADDs are served
 */
import { mkdirSync, readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import {
  CoreV1Api,
  DiscoveryV1Api,
  KubeConfig,
  type KubernetesObject,
  type V1ConfigMap,
  type V1EndpointSlice,
  type V1Namespace,
  type V1Node,
  type V1Pod,
  type V1Secret,
  type V1Service,
} from "@kubernetes/client-node";
import { CniError } from "../cni/protocol.js";
import { MeshObjects, parseConfigMapData } from "../lib/clustermesh/resources.js";
import { run } from "../lib/exec.js";
import { MESH_NAMESPACE } from "../lib/k8s/client.js";
import { type Informer, startInformer } from "../lib/k8s/informer.js";
import type { MaxConnectedClusters } from "../lib/kvstore/cluster-identity.js";
import type { Logger } from "../lib/log.js";
import { waitFor } from "../lib/process.js";
import { Trigger } from "../lib/trigger.js";
import { remoteEntries } from "./clustermesh/config.js";
import { DEFAULT_LIFECYCLE } from "./clustermesh/lifecycle.js";
import { ClusterMeshManager } from "./clustermesh/manager.js";
import { startApiServer } from "./cni-server/server.js";
import { type AgentConfig, VXLAN_OVERHEAD } from "./config.js";
import { DatapathController } from "./datapath/controller.js";
import {
  desiredDatapath,
  knownAddressPredicate,
  type NodeInfo,
  nodeInfo,
  remotePods,
  tunnelMac,
  tunnelRoutes,
} from "./datapath/desired.js";
import { EncryptionController } from "./encryption/controller.js";
import { encryptionPodMtu, remoteClusterNodes, withoutTunnels } from "./encryption/plan.js";
import { AgentCniErrorCode, EndpointManager } from "./endpoints/manager.js";
import { IprouteNetlink } from "./endpoints/netlink.js";
import { EndpointStore } from "./endpoints/store.js";
import { IdentityAllocator, keyOfIdentityObject } from "./identity/allocator.js";
import { clusterIdOf, labelList } from "./identity/labels.js";
import { PodIpAllocator } from "./ipam/allocator.js";
import {
  ensureCrds,
  MESH_API_VERSION,
  MESH_GROUP,
  MESH_VERSION,
  type MeshEndpoint,
  type MeshIdentity,
} from "./k8s/crds.js";
import { MeshApi } from "./k8s/mesh-api.js";
import { ApiPodDirectory } from "./k8s/pods.js";
import { MeshPublisher } from "./mesh/publisher.js";
import { MetricsRegistry } from "./metrics/registry.js";
import { desiredServices } from "./services/desired.js";
import { type AgentStatus, endpointTable, ipcacheTable, serviceTable } from "./status/status.js";
import { ensureTunnelDevice, syncTunnelRoutes, TUNNEL_DEVICE } from "./tunnel/tunnel.js";

const RESYNC_INTERVAL_MS = 30_000;
const MAX_LOGGED_PROBLEMS = 1000;

interface Caches {
  nodes: Informer<V1Node>;
  services: Informer<V1Service>;
  endpointSlices: Informer<V1EndpointSlice>;
  pods: Informer<V1Pod>;
  namespaces: Informer<V1Namespace>;
  identities: Informer<MeshIdentity & KubernetesObject>;
  meshEndpoints: Informer<MeshEndpoint & KubernetesObject>;
  /** kube-system Secrets and ConfigMaps: the mesh's remote-cluster configuration. */
  meshSecrets: Informer<V1Secret>;
  meshConfigMaps: Informer<V1ConfigMap>;
}

export class Agent {
  private readonly kubeConfig = new KubeConfig();
  private apiServer: Server | undefined;
  private metricsServer: Server | undefined;
  private datapath: DatapathController | undefined;
  private caches: Caches | undefined;
  private endpoints: EndpointManager | undefined;
  private encryption: EncryptionController | undefined;
  private clustermesh: ClusterMeshManager | undefined;
  private readonly triggers: Trigger[] = [];
  private datapathTrigger: Trigger | undefined;
  private meshTrigger: Trigger | undefined;
  private staleTrigger: Trigger | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private ready = false;
  private stopping = false;
  private tunnelIfindex: number | undefined;
  private nodeIp: string | undefined;
  private lastReconcile: AgentStatus["health"]["lastReconcile"];
  private readonly loggedProblems = new Set<string>();
  private readonly metrics = new MetricsRegistry();
  private readonly count = {
    cniRequests: this.metrics.counter(
      "clustermesh_agent_cni_requests_total",
      "CNI requests by command and result",
    ),
    reconciles: this.metrics.counter(
      "clustermesh_agent_datapath_reconciles_total",
      "datapath reconciliations",
    ),
    ops: this.metrics.counter(
      "clustermesh_agent_datapath_map_ops_total",
      "BPF map writes and deletes applied",
    ),
    problems: this.metrics.counter(
      "clustermesh_agent_skipped_objects_total",
      "API objects skipped as invalid",
    ),
  };
  private readonly counters: Record<string, number> = {
    cniAdd: 0,
    cniDel: 0,
    cniCheck: 0,
    cniErrors: 0,
    reconciles: 0,
    mapOps: 0,
    skippedObjects: 0,
  };

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    const { config, log } = this;
    this.kubeConfig.loadFromFile(config.kubeconfig);
    const podMtu = encryptionPodMtu(config.encryption, config.mtu, VXLAN_OVERHEAD);

    // 1. the socket first, so the plugin gets "try again later" rather than "no agent"
    this.apiServer = await startApiServer({
      socketPath: config.socket,
      log,
      cni: {
        add: (request) => this.requireEndpoints().add(request),
        del: (request) => this.requireEndpoints(true).del(request),
        check: (request) => this.requireEndpoints().check(request),
        status: () => {
          if (!this.ready)
            throw new CniError(AgentCniErrorCode.NotReady, "the clustermesh agent is starting");
        },
        gc: async (request) => {
          const valid = request.config["cni.dev/valid-attachments"];
          await this.requireEndpoints().gc(Array.isArray(valid) ? valid : []);
        },
      },
      status: () => this.status(),
      onCniRequest: (command, result) => {
        this.count.cniRequests({ command, result });
        if (result !== "ok") this.counters.cniErrors++;
        else if (command === "add") this.counters.cniAdd++;
        else if (command === "del") this.counters.cniDel++;
        else if (command === "check") this.counters.cniCheck++;
      },
    });
    this.metricsServer = await this.startMetrics();

    // 2. datapath (adopts pinned maps/links)
    this.datapath = DatapathController.load(config.bpffsRoot);
    const datapath = this.datapath;
    this.registerGauges();

    // 3. CRDs and informers
    await waitFor(
      "the Kubernetes API (creating CRDs)",
      () => ensureCrds(this.kubeConfig, log).then(() => true),
      {
        timeoutMs: 120_000,
        intervalMs: 500,
      },
    );
    const meshApi = new MeshApi(this.kubeConfig);
    this.datapathTrigger = this.addTrigger("datapath", () => this.reconcileDatapath());
    this.meshTrigger = this.addTrigger("mesh-endpoints", () => this.syncMeshEndpoints(publisher));
    this.staleTrigger = this.addTrigger("stale-endpoints", () => this.removeStaleEndpoints());
    this.caches = this.startCaches(meshApi);
    const caches = this.caches;

    const publisher = new MeshPublisher(meshApi, config.nodeName, log);
    const identities = new IdentityAllocator(meshApi, caches.identities, config.clusterId, log);
    const pods = new ApiPodDirectory(
      this.kubeConfig,
      // a cached namespace without labels has none (undefined = not cached: ask the API)
      (ns) => {
        const namespace = caches.namespaces.get(ns);
        return namespace ? (namespace.metadata?.labels ?? {}) : undefined;
      },
      (ns, name) => caches.pods.get(name, ns),
    );
    this.endpoints = new EndpointManager({
      store: new EndpointStore(config.stateDir),
      netlink: new IprouteNetlink(),
      datapath,
      identities,
      pods,
      clusterName: config.clusterName,
      podMtu,
      log,
      onChange: () => {
        this.meshTrigger?.trigger();
        this.datapathTrigger?.trigger();
      },
    });

    // 4. our pod CIDR, then the endpoints of the previous run
    const self = await waitFor(
      `Node ${config.nodeName} with a pod CIDR`,
      () => {
        const node = caches.nodes.get(config.nodeName);
        const info = node ? nodeInfo(node) : undefined;
        return info && info.podCidrs.length > 0 ? info : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 100 },
    );
    this.nodeIp = self.internalIp ?? (await this.underlayAddress());
    const allocator = new PodIpAllocator(self.podCidrs[0]);
    const broken = await this.endpoints.restore(allocator);
    log.info(
      {
        podCidr: allocator.podCidr,
        nodeIp: this.nodeIp,
        restored: this.endpoints.list().length,
        broken: broken.length,
      },
      "restored endpoints",
    );

    // 5. tunnel, socket LB, endpoint links (replaced in place: the new link is attached before the old pin goes)
    await writeSysctl("net/ipv4/ip_forward", "1");
    this.tunnelIfindex = await ensureTunnelDevice({
      port: config.tunnelPort,
      mtu: config.mtu - VXLAN_OVERHEAD,
      mac: tunnelMac(this.nodeIp),
    });
    datapath.configureTunnel(this.tunnelIfindex);
    // NodePort from other nodes' host networks and outside hosts; the node's own traffic into the tunnel
    datapath.configureNodePort(this.nodeIp, config.underlayInterface);
    // the pods' cgroup root may not exist yet (the kubelet creates pod cgroups below it lazily)
    mkdirSync(config.cgroupRoot, { recursive: true });
    datapath.attachSocketLb(config.cgroupRoot);
    // before the node is published: its record carries the WireGuard key
    if (config.encryption !== "none") {
      const nodeIp = this.nodeIp;
      this.encryption = await EncryptionController.start({
        mode: config.encryption,
        kubeConfig: this.kubeConfig,
        local: {
          cluster: config.clusterName,
          name: config.nodeName,
          nodeIp,
          podCidrs: self.podCidrs,
          bootId: bootId(),
        },
        stateDir: config.stateDir,
        underlayMtu: config.mtu,
        underlayDevice: config.underlayInterface,
        ipsecBackend: config.ipsecBackend,
        coreNodes: () => this.nodes(),
        onPublishedChange: () => {
          if (this.ready) {
            void publishSelf().catch((err) => log.warn({ err }, "republishing MeshNode failed"));
            // endpoints carry the node's IPsec key (Cilium: CiliumEndpoint status.encryption.key)
            this.meshTrigger?.trigger();
          }
        },
        log: log.child({ component: "encryption" }),
      });
      this.encryption.registerMetrics(this.metrics);
    }
    const brokenIds = new Set(broken.map((r) => r.id));
    for (const record of this.endpoints.list()) {
      if (!brokenIds.has(record.id)) await datapath.attach(record);
    }

    // 6. full sync, then stale removal and the first reconcile
    await waitFor("informers to sync", () => Object.values(caches).every((c) => c.synced()), {
      timeoutMs: 120_000,
      intervalMs: 50,
    });
    this.clustermesh = this.startClusterMesh();
    await this.endpoints.removeStale((record) => this.podGone(record), broken);
    for (const link of await this.endpoints.orphanLinks()) {
      log.info({ link }, "removing an endpoint link without a record");
      await this.endpoints.removeOrphanLink(link);
    }
    const staleLinks = datapath.removeStaleLinks(new Set(this.endpoints.list().map((r) => r.id)));
    if (staleLinks.length > 0) log.info({ endpoints: staleLinks }, "unpinned links of removed endpoints");
    const publishSelf = () =>
      publisher.publishNode({
        apiVersion: MESH_API_VERSION,
        kind: "MeshNode",
        metadata: { name: config.nodeName },
        spec: {
          addresses: [{ type: "InternalIP", ip: this.nodeIp as string }],
          ipam: { podCIDRs: self.podCidrs },
          ...(this.encryption ? { encryption: this.encryption.published() } : {}),
          bootID: bootId(),
          clusterName: config.clusterName,
          clusterID: config.clusterId,
        },
      });
    await publishSelf();
    await this.datapathTrigger.runNow();
    await this.meshTrigger.runNow();

    // 7. ready
    this.ready = true;
    this.resyncTimer = setInterval(() => {
      for (const trigger of this.triggers) trigger.trigger();
    }, RESYNC_INTERVAL_MS);
    log.info(
      { node: config.nodeName, cluster: config.clusterName, endpoints: this.endpoints.list().length },
      "agent ready",
    );
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.ready = false;
    clearInterval(this.resyncTimer);
    for (const trigger of this.triggers) trigger.close();
    await this.encryption?.stop().catch((err) => this.log.warn({ err }, "stopping encryption failed"));
    await this.clustermesh?.stop().catch((error) => this.log.warn({ err: error }, "clustermesh stop failed"));
    await Promise.all(
      Object.values(this.caches ?? {}).map((cache: Informer<KubernetesObject>) => cache.stop()),
    );
    for (const server of [this.apiServer, this.metricsServer]) {
      if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    // pinned maps and links stay: the datapath keeps forwarding until the next agent adopts them
    this.datapath?.close();
  }

  private requireEndpoints(evenIfNotReady = false): EndpointManager {
    if (!this.endpoints || (!this.ready && !evenIfNotReady) || this.stopping) {
      throw new CniError(AgentCniErrorCode.NotReady, "the clustermesh agent is starting; try again");
    }
    if (!this.endpoints.podCidr)
      throw new CniError(AgentCniErrorCode.NotReady, "the clustermesh agent is starting; try again");
    return this.endpoints;
  }

  private addTrigger(name: string, work: () => Promise<void>): Trigger {
    const trigger = new Trigger(name, work, this.log);
    this.triggers.push(trigger);
    return trigger;
  }

  private startCaches(meshApi: MeshApi): Caches {
    const core = this.kubeConfig.makeApiClient(CoreV1Api);
    const discovery = this.kubeConfig.makeApiClient(DiscoveryV1Api);
    const common = { kubeConfig: this.kubeConfig, log: this.log };
    const onDatapathInput = () => {
      if (this.ready) this.datapathTrigger?.trigger();
    };
    return {
      nodes: startInformer<V1Node>({
        ...common,
        name: "nodes",
        path: "/api/v1/nodes",
        list: () => core.listNode(),
        onChange: onDatapathInput,
        onListed: onDatapathInput,
      }),
      services: startInformer<V1Service>({
        ...common,
        name: "services",
        path: "/api/v1/services",
        list: () => core.listServiceForAllNamespaces(),
        onChange: onDatapathInput,
        onListed: onDatapathInput,
      }),
      endpointSlices: startInformer<V1EndpointSlice>({
        ...common,
        name: "endpointslices",
        path: "/apis/discovery.k8s.io/v1/endpointslices",
        list: () => discovery.listEndpointSliceForAllNamespaces(),
        onChange: onDatapathInput,
        onListed: onDatapathInput,
      }),
      pods: startInformer<V1Pod>({
        ...common,
        name: "pods",
        path: "/api/v1/pods",
        fieldSelector: `spec.nodeName=${this.config.nodeName}`,
        list: () => core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${this.config.nodeName}` }),
        onChange: (_pod, event) => {
          if (event === "delete" && this.ready) this.staleTrigger?.trigger(200);
        },
        // pods deleted while the watch was down show up as missing from the relist
        onListed: () => {
          if (this.ready) this.staleTrigger?.trigger(200);
        },
      }),
      namespaces: startInformer<V1Namespace>({
        ...common,
        name: "namespaces",
        path: "/api/v1/namespaces",
        list: () => core.listNamespace(),
      }),
      identities: startInformer<MeshIdentity & KubernetesObject>({
        ...common,
        name: "meshidentities",
        path: `/apis/${MESH_GROUP}/${MESH_VERSION}/meshidentities`,
        list: () => meshApi.listIdentities(),
      }),
      meshSecrets: startInformer<V1Secret>({
        ...common,
        name: "mesh-secrets",
        path: `/api/v1/namespaces/${MESH_NAMESPACE}/secrets`,
        list: () => core.listNamespacedSecret({ namespace: MESH_NAMESPACE }),
        onChange: (secret) => {
          const name = secret.metadata?.name;
          if (name === MeshObjects.remotes || name === MeshObjects.remoteCert) this.syncRemoteClusters();
        },
        onListed: () => this.syncRemoteClusters(),
      }),
      meshConfigMaps: startInformer<V1ConfigMap>({
        ...common,
        name: "mesh-configmaps",
        path: `/api/v1/namespaces/${MESH_NAMESPACE}/configmaps`,
        list: () => core.listNamespacedConfigMap({ namespace: MESH_NAMESPACE }),
      }),
      meshEndpoints: startInformer<MeshEndpoint & KubernetesObject>({
        ...common,
        name: "meshendpoints",
        path: `/apis/${MESH_GROUP}/${MESH_VERSION}/meshendpoints`,
        list: () => meshApi.listEndpoints(),
        onChange: (endpoint) => {
          if (!this.ready) return;
          this.datapathTrigger?.trigger();
          // someone else changed or deleted one of ours: put it back
          if (endpoint.metadata.labels?.["clustermesh.io/node"] === this.config.nodeName)
            this.meshTrigger?.trigger(100);
        },
        onListed: () => {
          if (!this.ready) return;
          this.datapathTrigger?.trigger();
          this.meshTrigger?.trigger(100);
        },
      }),
    };
  }

  /** The remote-cluster manager, for our own cluster as the flags and clustermesh-config describe it. */
  private startClusterMesh(): ClusterMeshManager {
    const { config, log } = this;
    let maxConnectedClusters: MaxConnectedClusters = 255;
    const configMap = this.caches?.meshConfigMaps.get(MeshObjects.config, MESH_NAMESPACE);
    if (configMap) {
      try {
        const mesh = parseConfigMapData(configMap.data, `ConfigMap ${MeshObjects.config}`);
        if (mesh.clusterName !== config.clusterName || mesh.clusterId !== config.clusterId) {
          log.error(
            {
              configMap: { name: mesh.clusterName, id: mesh.clusterId },
              flags: { name: config.clusterName, id: config.clusterId },
            },
            "clustermesh-config names another cluster than the agent's flags; the flags win",
          );
        }
        if (mesh.maxConnectedClusters === 511) maxConnectedClusters = 511;
      } catch (error) {
        log.warn({ err: String(error) }, "ignoring an invalid clustermesh-config");
      }
    }
    const manager = new ClusterMeshManager({
      local: { name: config.clusterName, id: config.clusterId, maxConnectedClusters },
      settings: {
        ...DEFAULT_LIFECYCLE,
        backendTtlMs: config.clustermeshBackendTtlMs,
        heartbeatTimeoutMs: config.clustermeshHeartbeatTimeoutMs,
      },
      stateDir: config.stateDir,
      log: log.child({ component: "clustermesh" }),
      onChange: () => {
        if (this.ready) this.datapathTrigger?.trigger(20);
      },
    });
    manager.registerMetrics(this.metrics);
    this.clustermesh = manager;
    this.syncRemoteClusters();
    return manager;
  }

  /** Level-triggered: hands the manager the whole configured set of remote clusters. */
  private syncRemoteClusters(): void {
    const { caches, clustermesh } = this;
    if (!caches || !clustermesh || !caches.meshSecrets.synced()) return;
    clustermesh.setRemotes(
      remoteEntries({
        localClusterName: this.config.clusterName,
        remotes: caches.meshSecrets.get(MeshObjects.remotes, MESH_NAMESPACE)?.data,
        remoteCert: caches.meshSecrets.get(MeshObjects.remoteCert, MESH_NAMESPACE)?.data,
      }),
    );
  }

  private nodes(): NodeInfo[] {
    return (this.caches?.nodes.list() ?? []).map(nodeInfo);
  }

  private reportProblem(object: string, message: string): void {
    const line = `${object}: ${message}`;
    if (this.loggedProblems.has(line)) return;
    if (this.loggedProblems.size >= MAX_LOGGED_PROBLEMS) this.loggedProblems.clear();
    this.loggedProblems.add(line);
    this.counters.skippedObjects++;
    this.count.problems();
    this.log.warn({ object, problem: message }, "skipped invalid object");
  }

  private async reconcileDatapath(): Promise<void> {
    const { caches, datapath, endpoints } = this;
    if (!caches || !datapath || !endpoints) return;
    const nodes = this.nodes();
    const mesh = this.clustermesh?.datapathInputs(nodes);
    const services = desiredServices({
      services: caches.services.list(),
      endpointSlices: caches.endpointSlices.list(),
      // NodePort frontends for every node's address: a pod's connect() to any node's NodePort is
      // translated at the socket (or by from-pod) on the client's own node (see README: limits)
      nodeAddresses: nodes.map((n) => n.internalIp).filter((ip): ip is string => Boolean(ip)),
      isKnownAddress: knownAddressPredicate(nodes),
      onProblem: (problem) => this.reportProblem(problem.object, problem.message),
      remoteBackends: mesh?.remoteBackends,
    });
    const planned = desiredDatapath({
      localNode: this.config.nodeName,
      nodes,
      endpoints: endpoints.list(),
      services,
      remotePods: remotePods(caches.meshEndpoints.list(), this.nodeIp),
      remoteClusters: mesh,
    });
    // Encryption on: remote pod traffic leaves through the kernel's routing (WireGuard device or
    // ipsec0, blackholes for nodes that cannot be peers), never through the VXLAN tunnel, even
    // before the encryption controller has started.
    const encrypt = this.config.encryption !== "none";
    const desired = encrypt ? withoutTunnels(planned) : planned;
    // remote clusters' nodes (as the mesh merge accepted them) are peers like local ones
    if (this.encryption && this.clustermesh && mesh)
      this.encryption.setRemoteNodes(remoteClusterNodes(this.clustermesh.views(), mesh.tunnelNodes));
    this.encryption?.nodesChanged();
    let ops = 0;
    try {
      ops = datapath.reconcile(desired).length;
      await syncTunnelRoutes(
        encrypt ? [] : tunnelRoutes(this.config.nodeName, [...nodes, ...(mesh?.tunnelNodes ?? [])]),
      );
      this.lastReconcile = { at: new Date().toISOString(), ops };
    } catch (error) {
      this.lastReconcile = { at: new Date().toISOString(), ops, error: (error as Error).message };
      throw error;
    } finally {
      this.counters.reconciles++;
      this.counters.mapOps += ops;
      this.count.reconciles();
      this.count.ops({}, ops);
    }
    if (ops > 0) this.log.debug({ ops }, "datapath reconciled");
  }

  private async syncMeshEndpoints(publisher: MeshPublisher): Promise<void> {
    if (!this.caches || !this.endpoints || !this.nodeIp) return;
    await publisher.syncEndpoints(
      this.endpoints.list(),
      this.caches.meshEndpoints.list(),
      this.nodeIp,
      this.encryption?.published().key,
    );
  }

  /** Gone = the API has no pod of that name with that UID (a terminating pod keeps its endpoint until DEL). */
  private async podGone(record: {
    podNamespace: string;
    podName: string;
    podUid?: string;
  }): Promise<boolean> {
    const cached = this.caches?.pods.get(record.podName, record.podNamespace);
    if (cached && (!record.podUid || cached.metadata?.uid === record.podUid)) return false;
    const core = this.kubeConfig.makeApiClient(CoreV1Api);
    try {
      const pod = await core.readNamespacedPod({ namespace: record.podNamespace, name: record.podName });
      return record.podUid !== undefined && pod.metadata?.uid !== record.podUid;
    } catch (error) {
      if ((error as { code?: number }).code === 404) return true;
      throw error;
    }
  }

  private async removeStaleEndpoints(): Promise<void> {
    if (!this.endpoints) return;
    const removed = await this.endpoints.removeStale((record) => this.podGone(record));
    if (removed > 0) this.log.info({ removed }, "removed endpoints of deleted pods");
  }

  private async underlayAddress(): Promise<string> {
    const [link] = JSON.parse(
      await run(["ip", "-j", "-4", "addr", "show", "dev", this.config.underlayInterface]),
    ) as {
      addr_info: { local: string }[];
    }[];
    const ip = link?.addr_info?.[0]?.local;
    if (!ip)
      throw new Error(`no IPv4 address on ${this.config.underlayInterface} and no InternalIP on the Node`);
    return ip;
  }

  status(): AgentStatus {
    const current = this.datapath ? safe(() => this.datapath?.current()) : undefined;
    const caches = Object.fromEntries(
      Object.values(this.caches ?? {}).map((c: Informer<KubernetesObject>) => [c.name, c.synced()]),
    );
    const identities = (this.caches?.identities.list() ?? [])
      .filter((identity) => clusterIdOf(Number(identity.metadata.name)) === this.config.clusterId)
      .map((identity) => ({
        id: Number(identity.metadata.name),
        labels: labelList(new Map(Object.entries(identity["security-labels"] ?? {}))),
        key: keyOfIdentityObject(identity),
      }))
      .sort((a, b) => a.id - b.id)
      .map(({ id, labels }) => ({ id, labels }));
    return {
      node: this.config.nodeName,
      cluster: { name: this.config.clusterName, id: this.config.clusterId },
      ready: this.ready,
      health: {
        kubernetes: {
          synced: Object.values(caches).length > 0 && Object.values(caches).every(Boolean),
          caches,
        },
        datapath: {
          loaded: this.datapath !== undefined,
          links: this.datapath ? (safe(() => this.datapath?.links().length) ?? 0) : 0,
        },
        tunnel: { device: TUNNEL_DEVICE, ifindex: this.tunnelIfindex },
        lastReconcile: this.lastReconcile,
      },
      podCidr: this.endpoints?.podCidr,
      nodeIp: this.nodeIp,
      endpoints: endpointTable(this.endpoints?.list() ?? []),
      services: serviceTable(current),
      identities,
      ipcache: ipcacheTable(current),
      encryption: this.encryption?.status() ?? { mode: this.config.encryption },
      counters: { ...this.counters, ...(this.endpoints?.counters ?? {}) },
      clustermesh: {
        remoteClusters: this.clustermesh?.status() ?? [],
        remoteIdentities: this.clustermesh?.identities() ?? [],
      },
    };
  }

  private registerGauges(): void {
    this.metrics.gauge("clustermesh_agent_ready", "1 when the agent serves CNI ADDs", () => [
      { value: this.ready ? 1 : 0 },
    ]);
    this.metrics.gauge("clustermesh_agent_endpoints", "local pod endpoints", () => [
      { value: this.endpoints?.list().length ?? 0 },
    ]);
    this.metrics.gauge("clustermesh_agent_services", "service frontends in the datapath", () => {
      const current = this.datapath?.current();
      return [{ value: current ? current.services.filter(([key]) => key.backendSlot === 0).length : 0 }];
    });
    this.metrics.gauge("clustermesh_agent_ipcache_entries", "ipcache entries", () => [
      { value: this.datapath?.current().ipcache.length ?? 0 },
    ]);
    this.metrics.gauge(
      "clustermesh_agent_identities",
      "identities of this cluster known to the agent",
      () => [{ value: this.caches?.identities.list().length ?? 0 }],
    );
    this.metrics.collectedCounter("clustermesh_datapath_packets_total", "datapath packets by reason", () =>
      Object.entries(this.datapath?.metrics() ?? {}).map(([reason, value]) => ({
        labels: { reason },
        value: Number(value.packets),
      })),
    );
  }

  private async startMetrics(): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.url === "/metrics" || req.url?.startsWith("/metrics?")) {
        const body = this.metrics.render();
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
        res.end(body);
      } else if (req.url === "/healthz") {
        res.writeHead(this.ready ? 200 : 503);
        res.end(this.ready ? "ok" : "starting");
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.config.metricsAddress.port, this.config.metricsAddress.host, () => resolve());
    });
    return server;
  }
}

function safe<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

function bootId(): string | undefined {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return undefined;
  }
}

/** /proc/sys/net is per network namespace: the agent's own (the node's). */
async function writeSysctl(path: string, value: string): Promise<void> {
  const { writeFileSync } = await import("node:fs");
  writeFileSync(join("/proc/sys", path), value);
}
