/**
 * The agent's composition root: builds the parts (constructor injection), wires their events to
 * the reconcile loops, and runs the start-up sequence that makes a restart non-disruptive — pods
 * stay reachable and the pinned datapath is adopted, never cleared:
 *   1. serve the unix socket and /healthz at once (CNI calls get "try again later" until ready)
 *   2. load the datapath: pinned maps and links of a previous run are adopted
 *   3. Kubernetes: create the CRDs if absent, start the informers
 *   4. endpoints: wait for this node's pod CIDR; restore the records of the previous run into IPAM
 *   5. node networking (tunnel, NodePort, socket LB), encryption (before the node is published: its
 *      record carries the WireGuard key), endpoints re-attached (the new link replaces the old pin)
 *   6. once every informer has synced: remote clusters, removal of what is stale (endpoints of
 *      deleted pods, orphan links and pins), this node's MeshNode, the first reconcile of each loop
 *   7. ready: CNI STATUS succeeds, ADDs are served, events run the loops
 * Every decision lives in the part the step names; this file only orders and connects them.
 *
 * Lifecycle: one AbortController for the agent's lifetime. stop() aborts it (a start-up still
 * waiting gives up), waits for start() to settle, then stops the parts in the reverse order of
 * their dependencies (see stop()).
 */

import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import { KubeConfig } from "@kubernetes/client-node";
import { PolicyMaps } from "../bpf/datapath/policy-maps.js";
import type { CurrentDatapathState } from "../bpf/datapath/reconcile.js";
import type { AgentStatus } from "../lib/api/agent-status.js";
import { AGENT_METRICS } from "../lib/api/metrics.js";
import { DEFAULT_LIFECYCLE } from "../lib/clustermesh/lifecycle.js";
import type { Logger } from "../lib/log.js";
import { MetricsRegistry } from "../lib/metrics/registry.js";
import { packageVersion } from "../lib/version.js";
import type { MeshDrift } from "./clustermesh/datapath-drift.js";
import { localCluster } from "./clustermesh/local-cluster.js";
import { ClusterMeshManager } from "./clustermesh/manager.js";
import { registerClusterMeshMetrics } from "./clustermesh/metrics.js";
import { configuredRemotes } from "./clustermesh/secrets.js";
import { type AgentPhase, cniHandlers } from "./cni-server/handlers.js";
import { startApiServer } from "./cni-server/server.js";
import type { AgentConfig } from "./config.js";
import { DatapathController } from "./datapath/controller.js";
import { EncryptionController } from "./encryption/controller.js";
import { encryptionPodMtu } from "./encryption/plan.js";
import { reattachEndpoints, removeLeftovers } from "./endpoints/adoption.js";
import { EndpointManager } from "./endpoints/manager.js";
import { KernelNetlink } from "./endpoints/netlink.js";
import { ApiPodDirectory } from "./endpoints/pod-directory.js";
import { type EndpointRecord, EndpointStore } from "./endpoints/store.js";
import { agentDirectoryInputs, serviceByFrontend } from "./flows/agent-directory.js";
import { FlowObserver } from "./flows/observer.js";
import { IdentityAllocator } from "./identity/allocator.js";
import { PodIpAllocator } from "./ipam/allocator.js";
import {
  type AgentCaches,
  cacheSyncState,
  cachesSynced,
  startAgentCaches,
  stopCaches,
} from "./k8s/caches.js";
import { ensureCrds } from "./k8s/ensure-crds.js";
import { MeshApi } from "./k8s/mesh-api.js";
import { type PodRef, podGoneCheck } from "./k8s/pod-gone.js";
import { SkippedObjects } from "./k8s/skipped-objects.js";
import { waitUnlessStopped } from "./lifecycle/wait.js";
import { MeshPublisher, meshNodeFor } from "./mesh/publisher.js";
import { AgentCounters } from "./metrics/agent-counters.js";
import { registerAgentGauges } from "./metrics/agent-gauges.js";
import { serveMetrics } from "./metrics/server.js";
import { setUpNodeNetworking } from "./node/networking.js";
import { bootId, ownNodeWithPodCidr, underlayAddress } from "./node/own-node.js";
import { PolicyController } from "./policy/controller.js";
import { EndpointPolicyError, PolicyLoop } from "./policy/loop.js";
import { PolicyStatusWriter } from "./policy/status-writer.js";
import { DatapathLoop, nodesOf } from "./reconcile/datapath-loop.js";
import { type LoopName, ReconcileLoops } from "./reconcile/loops.js";
import { statusDocument } from "./status/document.js";
import { TUNNEL_DEVICE, VXLAN_OVERHEAD } from "./tunnel/tunnel.js";

/**
 * Every loop also runs this often without a request. For the datapath this is the repair of drift
 * nobody announced (an entry deleted or overwritten in a pinned map behind the agent's back, by a
 * person with bpftool or a bug): each run diffs the desired state against the maps as read back
 * (bpf/datapath/apply.ts), not against a cache of what it wrote, so the next run rewrites it.
 * `meshctl clustermesh status` shows such drift until then.
 */
const RESYNC_INTERVAL_MS = 30_000;

/** This node as start-up found it. */
interface OwnNode {
  ip: string;
  podCidrs: string[];
  tunnelIfindex?: number;
}

/** The Kubernetes side of the agent. */
interface Kubernetes {
  kubeConfig: KubeConfig;
  meshApi: MeshApi;
  caches: AgentCaches;
}

/** What start() has built so far (stop() and status() may run at any point of it). */
interface Parts {
  apiServer?: Server;
  metricsServer?: Server;
  datapath?: DatapathController;
  caches?: AgentCaches;
  endpoints?: EndpointManager;
  node?: OwnNode;
  loops?: ReconcileLoops;
  datapathLoop?: DatapathLoop;
  encryption?: EncryptionController;
  clustermesh?: ClusterMeshManager;
  publisher?: MeshPublisher;
  flows?: FlowObserver;
  policyMaps?: PolicyMaps;
  policy?: PolicyController;
  policyLoop?: PolicyLoop;
}

export class Agent {
  private readonly lifetime = new AbortController();
  private phase: AgentPhase = "starting";
  private started: Promise<void> | undefined;
  private readonly parts: Parts = {};
  private readonly metrics = new MetricsRegistry({
    collectErrorsMetric: AGENT_METRICS.metricsCollectErrorsTotal,
    onCollectError: (metric, error) => this.log.warn({ metric, err: error }, "metric collector failed"),
  });
  private readonly counters = new AgentCounters(this.metrics);

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
  ) {}

  start(): Promise<void> {
    this.started ??= this.run();
    return this.started;
  }

  /** The start-up sequence (the steps of the file comment). */
  private async run(): Promise<void> {
    const { config, log, parts } = this;
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromFile(config.kubeconfig); // an unreadable kubeconfig fails before anything is served
    // 1. the socket first, so the plugin gets "try again later" rather than "no agent"
    await this.serve();
    // 2. datapath: a previous run's pinned maps and links are adopted, nothing is cleared
    const datapath = this.loadDatapath();
    await this.startFlows();
    // 3. CRDs and informers
    const kube = await this.watchKubernetes(kubeConfig);
    // 4. endpoints: our pod CIDR, then the endpoints of the previous run back into IPAM
    const endpoints = this.endpointManager(kube, datapath);
    const node = await this.ownNode(kube.caches);
    const broken = await this.restoreEndpoints(endpoints, node);
    const podGone = podGoneCheck(kube.kubeConfig, kube.caches.pods);
    const loops = this.reconcileLoops(kube, datapath, endpoints, node, podGone);
    // 5. node networking; encryption before our node is published (its record carries the
    //    WireGuard key); endpoint links (the new link is attached before the old pin goes)
    this.lifetime.signal.throwIfAborted();
    node.tunnelIfindex = await setUpNodeNetworking(datapath, config, node.ip);
    if (config.encryption !== "none")
      parts.encryption = await this.startEncryption(kube.kubeConfig, config.encryption, node);
    await reattachEndpoints(endpoints, datapath, broken, (id) => parts.policy?.flagsOf(id) ?? 0);
    // 6. full sync, then remote clusters, stale removal, our MeshNode and the first reconciles
    await this.waitUntil("informers to sync", () => cachesSynced(kube.caches), {
      timeoutMs: 120_000,
      intervalMs: 50,
    });
    parts.clustermesh = this.startClusterMesh(kube.caches);
    await removeLeftovers(endpoints, datapath, podGone, broken, log);
    await this.publishNode(node);
    // policy before the datapath: the endpoints' policy flags go into cm_endpoints with it
    await loops.runNow("policy");
    await loops.runNow("datapath");
    await loops.runNow("meshEndpoints");
    // 7. ready
    this.lifetime.signal.throwIfAborted();
    this.phase = "ready";
    loops.arm(RESYNC_INTERVAL_MS);
    log.info(
      { node: config.nodeName, cluster: config.clusterName, endpoints: endpoints.list().length },
      "agent ready",
    );
  }

  /**
   * Stop order, each step for the ones after it:
   *   1. the lifetime ends: a start-up still waiting gives up (what it built is stopped below) and
   *      CNI requests are refused
   *   2. the loops: no reconcile starts any more
   *   3. encryption and the remote clusters: their state is kept for the next run (wireguard-go and
   *      the remotes' datapath entries stay); both read the caches, so they stop before them
   *   4. the informers
   *   5. the socket and the metrics server: status stays answerable until the rest has stopped
   *   6. the datapath: only our fds close; pinned maps and links keep forwarding until the next
   *      agent adopts them
   */
  async stop(): Promise<void> {
    const { parts, log } = this;
    this.phase = "stopping";
    this.lifetime.abort(new Error("the agent is stopping"));
    // start()'s error is for its caller to report; here it only has to have settled
    await this.started?.catch(() => undefined);
    parts.loops?.close();
    await parts.encryption?.stop().catch((err) => log.warn({ err }, "stopping encryption failed"));
    await parts.clustermesh?.stop().catch((err) => log.warn({ err }, "clustermesh stop failed"));
    await stopCaches(parts.caches);
    for (const server of [parts.apiServer, parts.metricsServer]) {
      if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await parts.flows?.close().catch((err) => log.warn({ err }, "stopping flows failed"));
    parts.policyMaps?.close();
    parts.datapath?.close();
  }

  status(): AgentStatus {
    const { config, parts } = this;
    const { datapath, datapathLoop } = parts;
    // one read of the maps per request: the tables and the published-versus-programmed comparison
    const current = datapath && readOrUndefined(() => datapath.current());
    const drift = current && datapathLoop && this.meshDrift(datapathLoop, current);
    return statusDocument({
      node: config.nodeName,
      cluster: { name: config.clusterName, id: config.clusterId },
      encryptionMode: config.encryption,
      ready: this.phase === "ready",
      caches: cacheSyncState(parts.caches),
      datapath: {
        loaded: datapath !== undefined,
        links: (datapath && readOrUndefined(() => datapath.links().length)) ?? 0,
        current,
      },
      tunnel: { device: TUNNEL_DEVICE, ifindex: parts.node?.tunnelIfindex },
      lastReconcile: parts.datapathLoop?.lastReconcile,
      podCidr: parts.endpoints?.podCidr,
      nodeIp: parts.node?.ip,
      endpoints: parts.endpoints?.list() ?? [],
      identities: parts.caches?.identities.list() ?? [],
      encryption: parts.encryption?.status(),
      counters: { ...this.counters.values, ...(parts.endpoints?.counters ?? {}) },
      policyOf: this.policyStatus(),
      invalidPolicies: parts.policyLoop?.invalid,
      clustermesh: parts.clustermesh && {
        remoteClusters: parts.clustermesh.status(drift?.clusters),
        remoteIdentities: parts.clustermesh.identities(),
        ...(drift ? { unowned: drift.unowned } : {}),
      },
    });
  }

  /** One read of the drop counters per status request; undefined when they cannot be read. */
  private policyStatus() {
    const { policy, policyMaps } = this.parts;
    const drops = policyMaps && readOrUndefined(() => policyMaps.readDrops());
    return policy && drops ? (endpoint: string) => policy.status(endpoint, drops) : undefined;
  }

  /** Published versus programmed per remote; a failure is a bug of ours: logged, the status says "unknown". */
  private meshDrift(loop: DatapathLoop, current: CurrentDatapathState): MeshDrift | undefined {
    try {
      return loop.meshDrift(current);
    } catch (err) {
      this.log.warn({ err }, "comparing the BPF maps with what the remote clusters published failed");
      return undefined;
    }
  }

  // ---- the steps' wiring ----

  private async serve(): Promise<void> {
    const { config, log, parts } = this;
    parts.apiServer = await startApiServer({
      socketPath: config.socket,
      log,
      cni: cniHandlers({ phase: () => this.phase, endpoints: () => parts.endpoints }),
      status: () => this.status(),
      onCniRequest: (command, result, seconds) => this.counters.cniRequest(command, result, seconds),
    });
    parts.metricsServer = await serveMetrics(
      config.metricsAddress,
      this.metrics,
      () => this.phase === "ready",
    );
  }

  private loadDatapath(): DatapathController {
    const { parts } = this;
    const datapath = DatapathController.load(this.config.bpffsRoot, this.config.endpointAttach);
    parts.datapath = datapath;
    registerAgentGauges(this.metrics, {
      ready: () => this.phase === "ready",
      endpoints: () => parts.endpoints?.list().length ?? 0,
      datapath: () => datapath.current(),
      packetsByReason: () => datapath.metrics(),
      identities: () => parts.caches?.identities.list().length ?? 0,
      policyDrops: () => {
        const status = this.policyStatus();
        return (parts.endpoints?.list() ?? []).flatMap((record) =>
          (status?.(record.id)?.dropsByRule ?? []).map((drop) => ({
            pod: `${record.podNamespace}/${record.podName}`,
            ...drop,
          })),
        );
      },
    });
    return datapath;
  }

  /** Flow events and Hubble's observer API (agent/flows/); off with --hubble-flows off. */
  private async startFlows(): Promise<void> {
    const { config, log, parts } = this;
    if (config.hubble.flows === "off") return;
    const { tls } = config.hubble;
    // flows are an observability feature: without them (no protos, say) the agent still networks
    parts.flows = await FlowObserver.start({
      config: config.hubble,
      pinRoot: config.bpffsRoot,
      // Hubble names nodes "<cluster>/<node>" (Cilium's absolute node name)
      nodeName: `${config.clusterName}/${config.nodeName}`,
      clusterName: config.clusterName,
      version: packageVersion(),
      tls: tls && { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key) },
      directory: () =>
        agentDirectoryInputs({
          clusterName: config.clusterName,
          desired: parts.datapathLoop?.lastDesired,
          endpoints: parts.endpoints?.list() ?? [],
          meshEndpoints: parts.caches?.meshEndpoints.list() ?? [],
          identities: parts.caches?.identities.list() ?? [],
          remoteClusters: parts.clustermesh?.views() ?? [],
          remoteIdentities: parts.clustermesh?.identities() ?? [],
          localNodeIp: parts.node?.ip,
          localNodes: parts.caches
            ? nodesOf(parts.caches).map((n) => ({ name: n.name, ip: n.internalIp }))
            : [],
          remoteNodes: (parts.clustermesh?.views() ?? []).flatMap((view) => view.nodes),
        }),
      serviceOf: (address, port) => serviceByFrontend(parts.caches?.services.list() ?? [], address, port),
      onError: (err, what) => log.warn({ err }, `flows: ${what} failed`),
    }).catch((err) => {
      log.error({ err }, "flows and Hubble's observer API are off: they could not start");
      return undefined;
    });
    if (parts.flows) log.info({ addresses: parts.flows.addresses }, "hubble observer serving");
  }

  private async watchKubernetes(kubeConfig: KubeConfig): Promise<Kubernetes> {
    const { config, log } = this;
    await this.waitUntil(
      "the Kubernetes API (creating CRDs)",
      () => ensureCrds(kubeConfig, log).then(() => true),
      {
        timeoutMs: 120_000,
        intervalMs: 500,
      },
    );
    const meshApi = new MeshApi(kubeConfig);
    const caches = startAgentCaches({
      kubeConfig,
      meshApi,
      nodeName: config.nodeName,
      log,
      events: {
        datapathInputChanged: () => this.request("datapath"),
        podsDeleted: () => this.request("staleEndpoints", 200),
        meshEndpointsChanged: (ours) => {
          this.request("datapath");
          if (ours) this.request("meshEndpoints", 100);
        },
        remoteClustersConfigChanged: () => this.syncRemoteClusters(),
        policyInputChanged: () => this.request("policy"),
        podLabelsMayHaveChanged: () => this.request("endpointLabels"),
      },
    });
    this.parts.caches = caches;
    return { kubeConfig, meshApi, caches };
  }

  private endpointManager({ kubeConfig, meshApi, caches }: Kubernetes, datapath: DatapathController) {
    const { config, log } = this;
    const endpoints = new EndpointManager({
      store: new EndpointStore(config.stateDir),
      netlink: new KernelNetlink(),
      datapath,
      policy: { prepare: (record) => this.endpointPolicy(record) },
      identities: new IdentityAllocator(meshApi, caches.identities, config.clusterId, log),
      pods: new ApiPodDirectory(
        kubeConfig,
        // a cached namespace without labels has none (undefined = not cached: ask the API)
        (ns) => {
          const namespace = caches.namespaces.get(ns);
          return namespace ? (namespace.metadata?.labels ?? {}) : undefined;
        },
        (ns, name) => caches.pods.get(name, ns),
      ),
      clusterName: config.clusterName,
      podMtu: encryptionPodMtu(config.encryption, config.mtu, VXLAN_OVERHEAD),
      log,
      onChange: () => {
        this.request("meshEndpoints");
        // policy first (it is quick): a pod whose labels changed gets its verdicts with its identity
        this.request("policy", 0);
        this.request("datapath");
      },
    });
    this.parts.endpoints = endpoints;
    return endpoints;
  }

  /**
   * A new endpoint's policy, in the maps before its ADD returns: a policy run that starts now sees
   * the endpoint (its record exists) and programs it; its flags go into the endpoints-map entry.
   */
  private async endpointPolicy(record: EndpointRecord): Promise<number> {
    const { loops, policyLoop, policy } = this.parts;
    if (!loops || !policyLoop || !policy)
      throw new EndpointPolicyError(record.id, "the policy loop is not running yet");
    await loops.runNow("policy");
    policyLoop.assertProgrammed(record.id);
    return policy.flagsOf(record.id);
  }

  private async ownNode(caches: AgentCaches): Promise<OwnNode> {
    const { nodeName, underlayInterface } = this.config;
    const self = await this.waitUntil(
      `Node ${nodeName} with a pod CIDR`,
      () => ownNodeWithPodCidr(caches.nodes, nodeName),
      {
        timeoutMs: 300_000,
        intervalMs: 100,
      },
    );
    const node = {
      ip: self.internalIp ?? (await underlayAddress(underlayInterface)),
      podCidrs: self.podCidrs,
    };
    this.parts.node = node;
    return node;
  }

  /** Returns the records that could not be restored (torn down once the caches are complete). */
  private async restoreEndpoints(endpoints: EndpointManager, node: OwnNode) {
    const allocator = new PodIpAllocator(node.podCidrs[0]);
    const broken = await endpoints.restore(allocator);
    this.log.info(
      {
        podCidr: allocator.podCidr,
        nodeIp: node.ip,
        restored: endpoints.list().length,
        broken: broken.length,
      },
      "restored endpoints",
    );
    return broken;
  }

  private reconcileLoops(
    { kubeConfig, meshApi, caches }: Kubernetes,
    datapath: DatapathController,
    endpoints: EndpointManager,
    node: OwnNode,
    podGone: (record: PodRef) => Promise<boolean>,
  ): ReconcileLoops {
    const { config, log, parts } = this;
    const skipped = new SkippedObjects(log, () => this.counters.skippedObject());
    const policy = this.policyController(datapath, endpoints);
    const statusWriter = new PolicyStatusWriter(kubeConfig, log.child({ component: "policy" }));
    const policyLoop = new PolicyLoop({
      clusterName: config.clusterName,
      clusterId: config.clusterId,
      caches,
      endpoints: () => endpoints.list(),
      remoteIdentities: () => parts.clustermesh?.identities() ?? [],
      controller: policy,
      onCidrIdentitiesChanged: () => this.request("datapath"),
      writeConditions: (conditions) => statusWriter.write(conditions),
      log: log.child({ component: "policy" }),
    });
    const datapathLoop = new DatapathLoop({
      nodeName: config.nodeName,
      clusterId: config.clusterId,
      policyFlags: (endpoint) => policy.flagsOf(endpoint),
      onPolicyFlagsWritten: (flags) => policy.flagsWritten(flags),
      cidrIdentities: () => policyLoop.cidrIdentities(),
      nodeIp: node.ip,
      encrypt: config.encryption !== "none",
      caches,
      endpoints,
      datapath,
      clustermesh: () => parts.clustermesh,
      encryption: () => parts.encryption,
      onProblem: (object, problem) => skipped.report(object, problem),
      onReconciled: (ops) => this.counters.reconciled(ops),
      log,
    });
    const publisher = new MeshPublisher(meshApi, config.nodeName, log);
    const loops = new ReconcileLoops(
      {
        datapath: () => datapathLoop.run(),
        meshEndpoints: async () => {
          await publisher.syncEndpoints(
            endpoints.list(),
            caches.meshEndpoints.list(),
            node.ip,
            parts.encryption?.published().key,
          );
        },
        staleEndpoints: async () => {
          const removed = await endpoints.removeStale(podGone);
          if (removed > 0) log.info({ removed }, "removed endpoints of deleted pods");
        },
        policy: () => policyLoop.run(),
        endpointLabels: async () => {
          await endpoints.refreshIdentities();
        },
      },
      log,
    );
    Object.assign(parts, { datapathLoop, publisher, loops, policyLoop });
    return loops;
  }

  /**
   * The policy maps' applier; after a restart it adopts the slots the endpoints' cm_endpoints
   * flags name and diffs against what the previous run wrote.
   */
  private policyController(datapath: DatapathController, endpoints: EndpointManager): PolicyController {
    const { config, log, parts } = this;
    const maps = PolicyMaps.open(config.bpffsRoot);
    parts.policyMaps = maps;
    const policy = new PolicyController({
      maps,
      onFlagsChanged: () => this.request("datapath", 0),
      log: log.child({ component: "policy" }),
    });
    const flagsByIp = new Map(
      datapath.current().endpoints.map(([key, value]) => [key.address, value.flags ?? 0]),
    );
    policy.adopt(endpoints.list().map((record) => ({ id: record.id, flags: flagsByIp.get(record.ip) ?? 0 })));
    parts.policy = policy;
    return policy;
  }

  private async startEncryption(
    kubeConfig: KubeConfig,
    mode: "wireguard" | "ipsec",
    node: OwnNode,
  ): Promise<EncryptionController> {
    const { config, log, parts } = this;
    const encryption = await EncryptionController.start({
      mode,
      kubeConfig,
      local: {
        cluster: config.clusterName,
        name: config.nodeName,
        nodeIp: node.ip,
        podCidrs: node.podCidrs,
        bootId: bootId(),
      },
      stateDir: config.stateDir,
      underlayMtu: config.mtu,
      underlayDevice: config.underlayInterface,
      ipsecBackend: config.ipsecBackend,
      coreNodes: () => nodesOf(parts.caches),
      // an IPsec key rotation changes the SPI this node publishes, and the key index its endpoints
      // carry (Cilium: CiliumEndpoint status.encryption.key)
      onPublishedChange: () => {
        if (this.phase !== "ready") return;
        void this.publishNode(node).catch((err) => log.warn({ err }, "republishing MeshNode failed"));
        parts.loops?.request("meshEndpoints");
      },
      log: log.child({ component: "encryption" }),
    });
    encryption.registerMetrics(this.metrics);
    return encryption;
  }

  private async publishNode(node: OwnNode): Promise<void> {
    const { config, parts } = this;
    await parts.publisher?.publishNode(
      meshNodeFor({
        nodeName: config.nodeName,
        clusterName: config.clusterName,
        clusterId: config.clusterId,
        nodeIp: node.ip,
        podCidrs: node.podCidrs,
        encryption: parts.encryption?.published(),
        bootId: bootId(),
      }),
    );
  }

  /** The remote-cluster manager, for our own cluster as the flags and clustermesh-config describe it. */
  private startClusterMesh(caches: AgentCaches): ClusterMeshManager {
    const { config, log } = this;
    const { local, problems } = localCluster(config, caches.meshConfigMaps);
    for (const problem of problems) log[problem.level](problem.details, problem.message);
    const manager = new ClusterMeshManager({
      local,
      settings: {
        ...DEFAULT_LIFECYCLE,
        backendTtlMs: config.clustermeshBackendTtlMs,
        heartbeatTimeoutMs: config.clustermeshHeartbeatTimeoutMs,
      },
      stateDir: config.stateDir,
      log: log.child({ component: "clustermesh" }),
      onChange: () => {
        this.request("datapath", 20);
        this.request("policy", 20); // remote identities came or went
      },
    });
    registerClusterMeshMetrics(this.metrics, manager, {
      cluster: config.clusterName,
      nodeName: config.nodeName,
    });
    this.parts.clustermesh = manager;
    this.syncRemoteClusters();
    return manager;
  }

  /** Level-triggered: hands the manager the whole configured set of remote clusters. */
  private syncRemoteClusters(): void {
    const { caches, clustermesh } = this.parts;
    const remotes = caches && clustermesh && configuredRemotes(caches.meshSecrets, this.config.clusterName);
    if (remotes) clustermesh?.setRemotes(remotes);
  }

  private request(loop: LoopName, delayMs?: number): void {
    this.parts.loops?.request(loop, delayMs);
  }

  private waitUntil<T>(
    what: string,
    probe: () => Promise<T | undefined | false> | T | undefined | false,
    timing: { timeoutMs: number; intervalMs: number },
  ): Promise<T> {
    return waitUnlessStopped(what, probe, { ...timing, signal: this.lifetime.signal });
  }
}

/** Status must answer even when the BPF maps cannot be read (that is what it would report). */
function readOrUndefined<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    // the status then shows no links/services/ipcache; the datapath's own errors are logged where they happen
    return undefined;
  }
}
