/**
 * The agent's encryption controller (`--encryption wireguard|ipsec`): owns the node's WireGuard
 * device or strongSwan instance and keeps its peers equal to every other node of every connected
 * cluster. Inputs: this cluster's core Nodes (from the agent) + MeshNodes (own informer), remote
 * clusters' nodes (upsertNode/removeNode, fed by the remote-cluster manager), and for IPsec the key
 * Secret kube-system/clustermesh-ipsec-keys (own informer). Outputs: peers, routes (peer prefixes
 * via the device; blackholes for nodes that cannot be peers), the fields this node publishes
 * (WireGuard public key, IPsec SPI), status and metrics. Syncs are serialised by one Trigger and
 * re-run periodically (level-triggered: a failed initiate or a missed event heals on its own).
 */

import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import {
  CoreV1Api,
  type KubeConfig,
  type KubernetesObject,
  PatchStrategy,
  setHeaderOptions,
  type V1Secret,
} from "@kubernetes/client-node";
import type { EncryptionStatus } from "../../lib/api/agent-status.js";
import { MESH_GROUP, MESH_VERSION, type MeshNode } from "../../lib/api/crds.js";
import {
  type EncryptionBackendName,
  type EncryptionMode,
  IPSEC_KEYS_SECRET,
  type IpsecBackendChoice,
  wireGuardInterfaceName,
} from "../../lib/api/encryption.js";
import { AGENT_METRICS } from "../../lib/api/metrics.js";
import { nthAddress, parseCidr } from "../../lib/cidr.js";
import { errorChainSummary } from "../../lib/error-chain.js";
import { CommandError, run } from "../../lib/exec.js";
import { decodeSecretData } from "../../lib/k8s/client.js";
import { type Informer, startInformer } from "../../lib/k8s/informer.js";
import type { Logger } from "../../lib/log.js";
import type { MetricsRegistry } from "../../lib/metrics/registry.js";
import { isRunning, type ProcessRef, stopProcess } from "../../lib/process.js";
import { Trigger } from "../../lib/trigger.js";
import type { NodeInfo } from "../datapath/desired.js";
import { MeshApi } from "../k8s/mesh-api.js";
import type { IpsecBackend } from "./ipsec/backend.js";
import { probeKernelEsp } from "./ipsec/kernel.js";
import { IpsecKeyError, type IpsecKeySet, parseIpsecKeys } from "./ipsec/keys.js";
import { StrongSwanIpsec, strongSwanPaths } from "./ipsec/strongswan.js";
import type { XfrmNode } from "./ipsec/xfrm.js";
import { KernelXfrmIpsec, XFRM_MODEL_FILE } from "./ipsec/xfrm-backend.js";
import {
  chooseIpsecBackend,
  type EncryptionNodeRecord,
  localClusterNodes,
  nodePrefixesOf,
  planIpsecPeers,
  WIREGUARD_OVERHEAD,
} from "./plan.js";
import { encryptionRoutes, syncEncryptionRoutes } from "./routes.js";
import { WIREGUARD_PUBKEY_ANNOTATION, WireGuardManager } from "./wireguard/manager.js";

const RESYNC_INTERVAL_MS = 5_000;
const INFORMER_SYNC_TIMEOUT_MS = 30_000;
/** Cilium's cilium_host/cilium_net: a veth pair holding the node's router IP (no dummy devices here). */
export const ROUTER_DEVICE = "cm_host";
const ROUTER_PEER_DEVICE = "cm_net";

export interface EncryptionControllerOptions {
  mode: "wireguard" | "ipsec";
  kubeConfig: KubeConfig;
  local: { cluster: string; name: string; nodeIp: string; podCidrs: string[]; bootId?: string };
  stateDir: string;
  underlayMtu: number;
  /** The device holding the node IP (kernel XFRM routes remote pod prefixes to it). */
  underlayDevice: string;
  ipsecBackend?: IpsecBackendChoice;
  /** This cluster's core Nodes as the agent's cache holds them. */
  coreNodes: () => readonly NodeInfo[];
  /** Called when a field this node publishes changed (IPsec SPI after a rotation). */
  onPublishedChange: () => void;
  log: Logger;
}

export class EncryptionController {
  private readonly remoteClusters = new Map<string, Map<string, EncryptionNodeRecord>>();
  private meshNodes: Informer<MeshNode & KubernetesObject> | undefined;
  private keySecret: Informer<V1Secret> | undefined;
  private keys: IpsecKeySet | undefined;
  private keyText: string | undefined;
  private configError: string | undefined;
  /** The kernel backend forced onto a kernel without ESP: reported with every status. */
  private readonly backendProblem: string | undefined;
  private publishedSpi: number | undefined;
  private ipsecSignature = "";
  private ipsecNeedsRetry = true;
  private readonly skippedTotal: Record<string, number> = {};
  private previouslySkipped = new Map<string, string>();
  private snapshot: EncryptionStatus;
  private readonly trigger: Trigger;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  private constructor(
    private readonly options: EncryptionControllerOptions,
    private readonly wireguard: WireGuardManager | undefined,
    private readonly ipsec: IpsecBackend | undefined,
    backendDetail: string | undefined,
    backendProblem: string | undefined,
  ) {
    this.backendProblem = backendProblem;
    this.snapshot = {
      mode: options.mode,
      backend: this.backend(),
      backendDetail,
      peers: [],
      skipped: [],
      skippedTotal: {},
      dropPrefixes: [],
    };
    this.trigger = new Trigger("encryption", () => this.sync(), options.log, 50, 1_000);
  }

  /** Starts the backend (adopting wireguard-go after an agent restart) and the informers; first sync done. */
  static async start(options: EncryptionControllerOptions): Promise<EncryptionController> {
    const { log, local } = options;
    const dir = join(options.stateDir, "encryption");
    let wireguard: WireGuardManager | undefined;
    let ipsec: IpsecBackend | undefined;
    let backendDetail: string | undefined;
    let backendProblem: string | undefined;
    if (options.mode === "wireguard") {
      wireguard = await WireGuardManager.start({
        local: { cluster: local.cluster, name: local.name },
        stateDir: dir,
        // the agent's state dir is unique on the machine; UAPI socket names are global
        ifname: wireGuardInterfaceName(options.stateDir),
        mtu: options.underlayMtu - WIREGUARD_OVERHEAD,
        log,
      });
    } else {
      const probe = await probeKernelEsp(log);
      const choice = chooseIpsecBackend(options.ipsecBackend ?? "auto", probe);
      backendDetail = choice.detail;
      backendProblem = choice.problem;
      if (choice.problem)
        log.error({ problem: choice.problem }, "ipsec: forced kernel backend cannot encrypt");
      const self = xfrmNode(local.cluster, local.name, local.nodeIp, local.podCidrs, local.bootId);
      const kernel = () =>
        new KernelXfrmIpsec({
          local: self,
          underlayDevice: options.underlayDevice,
          dir: join(dir, "xfrm"),
          policiesOnly: choice.policiesOnly,
          log,
        });
      // whatever a previous agent ran goes first (a backend switch): charon holds the IKE ports
      await stopLeftoverCharon(join(dir, "ipsec"), log);
      if (choice.backend === "kernel-xfrm") {
        ipsec = kernel();
      } else {
        if (existsSync(join(dir, "xfrm", XFRM_MODEL_FILE))) await kernel().remove();
        // libipsec needs the router IP as the source of its routes
        await ensureRouterAddress(local.podCidrs[0]);
        ipsec = await StrongSwanIpsec.start({ dir: join(dir, "ipsec"), local: self, log });
      }
      log.info({ backend: ipsec.name, detail: backendDetail }, "ipsec: backend selected");
    }
    const controller = new EncryptionController(options, wireguard, ipsec, backendDetail, backendProblem);
    try {
      if (wireguard) await annotateNode(options.kubeConfig, local.name, wireguard.publicKey);
      await controller.startInformers();
      await controller.trigger.runNow();
    } catch (error) {
      await controller.stop();
      throw error;
    }
    controller.timer = setInterval(() => controller.trigger.trigger(), RESYNC_INTERVAL_MS);
    return controller;
  }

  get mode(): EncryptionMode {
    return this.options.mode;
  }

  /** What this node publishes on its MeshNode (spec.encryption) — never the private key. */
  published(): { key?: number; wireguardPublicKey?: string } {
    if (this.wireguard) return { wireguardPublicKey: this.wireguard.publicKey };
    return this.publishedSpi !== undefined ? { key: this.publishedSpi } : {};
  }

  // --- node records of other clusters (the remote-cluster manager calls these) ---

  /** Adds or updates a node of a remote cluster; a record of the local cluster is ignored. */
  upsertNode(node: EncryptionNodeRecord): void {
    if (node.cluster === this.options.local.cluster) return;
    const nodes = this.remoteClusters.get(node.cluster) ?? new Map();
    nodes.set(node.name, node);
    this.remoteClusters.set(node.cluster, nodes);
    this.trigger.trigger();
  }

  removeNode(cluster: string, name: string): void {
    if (this.remoteClusters.get(cluster)?.delete(name)) this.trigger.trigger();
  }

  /** Replaces every node of a remote cluster (after a resync). */
  setClusterNodes(cluster: string, nodes: readonly EncryptionNodeRecord[]): void {
    if (cluster === this.options.local.cluster) return;
    this.remoteClusters.set(cluster, new Map(nodes.map((n) => [n.name, { ...n, cluster }])));
    this.trigger.trigger();
  }

  /** Replaces every remote cluster's nodes at once (the agent's datapath reconcile, level-triggered). */
  setRemoteNodes(nodes: readonly EncryptionNodeRecord[]): void {
    const next = new Map<string, Map<string, EncryptionNodeRecord>>();
    for (const node of nodes) {
      if (node.cluster === this.options.local.cluster) continue;
      const cluster = next.get(node.cluster) ?? new Map<string, EncryptionNodeRecord>();
      cluster.set(node.name, node);
      next.set(node.cluster, cluster);
    }
    const before = JSON.stringify([...this.remoteClusters].map(([c, m]) => [c, [...m.values()]]));
    const after = JSON.stringify([...next].map(([c, m]) => [c, [...m.values()]]));
    if (before === after) return;
    this.remoteClusters.clear();
    for (const [cluster, m] of next) this.remoteClusters.set(cluster, m);
    this.trigger.trigger();
  }

  /** A disconnected cluster: its nodes stop being peers (their prefixes are no longer routed at all). */
  removeCluster(cluster: string): void {
    if (this.remoteClusters.delete(cluster)) this.trigger.trigger();
  }

  /** The agent's node cache changed. */
  nodesChanged(): void {
    this.trigger.trigger();
  }

  /** Runs a sync now and waits for it (tests, start-up). */
  syncNow(): Promise<void> {
    return this.trigger.runNow();
  }

  status(): EncryptionStatus {
    return this.snapshot;
  }

  registerMetrics(metrics: MetricsRegistry): void {
    const mode = this.options.mode;
    metrics.gauge(
      AGENT_METRICS.encryptionPeers,
      "encryption peers (WireGuard peers or IPsec remotes)",
      ["mode"],
      () => [{ labels: { mode }, value: this.snapshot.peers.length }],
    );
    metrics.collectedCounter(
      AGENT_METRICS.encryptionSkippedPeersTotal,
      "nodes skipped as encryption peers (their traffic is dropped), by reason",
      ["reason"],
      () =>
        Object.entries(this.snapshot.skippedTotal).map(([reason, value]) => ({ labels: { reason }, value })),
    );
    metrics.gauge(
      AGENT_METRICS.encryptionDropPrefixes,
      "prefixes blackholed for lack of a usable peer",
      [],
      () => [{ value: this.snapshot.dropPrefixes.length }],
    );
    if (mode === "ipsec") {
      metrics.gauge(AGENT_METRICS.encryptionIpsecSas, "established IPsec SAs", ["type"], () => [
        { labels: { type: "ike" }, value: this.snapshot.saCounts?.ike ?? 0 },
        { labels: { type: "child" }, value: this.snapshot.saCounts?.child ?? 0 },
      ]);
    }
  }

  /**
   * Stops informers and timers. wireguard-go keeps running with its peers and routes (adopted by
   * the next agent, like the pinned BPF links); charon cannot be adopted, so it stops and the
   * remote prefixes stay blackholed until the next agent has SAs again.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.trigger.close();
    await Promise.all([this.meshNodes?.stop(), this.keySecret?.stop()]);
    if (this.ipsec) {
      const prefixes = this.remotes().flatMap(nodePrefixesOf);
      await this.ipsec.stop({ dropPrefixes: prefixes });
    }
  }

  // --- internals ---

  private backend(): EncryptionBackendName | undefined {
    if (this.wireguard) return this.wireguard.device.backend === "kernel" ? "kernel" : "wireguard-go";
    return this.ipsec?.name;
  }

  private async startInformers(): Promise<void> {
    const { kubeConfig, log } = this.options;
    const meshApi = new MeshApi(kubeConfig);
    const onChange = () => this.trigger.trigger();
    this.meshNodes = startInformer<MeshNode & KubernetesObject>({
      name: "encryption-meshnodes",
      kubeConfig,
      log,
      path: `/apis/${MESH_GROUP}/${MESH_VERSION}/meshnodes`,
      list: () => meshApi.listNodes() as never,
      onChange,
      onListed: onChange,
    });
    const caches: Informer<KubernetesObject>[] = [this.meshNodes];
    if (this.options.mode === "ipsec") {
      const core = kubeConfig.makeApiClient(CoreV1Api);
      const fieldSelector = `metadata.name=${IPSEC_KEYS_SECRET.name}`;
      this.keySecret = startInformer<V1Secret>({
        name: "encryption-ipsec-keys",
        kubeConfig,
        log,
        path: `/api/v1/namespaces/${IPSEC_KEYS_SECRET.namespace}/secrets`,
        fieldSelector,
        list: () => core.listNamespacedSecret({ namespace: IPSEC_KEYS_SECRET.namespace, fieldSelector }),
        onChange,
        onListed: onChange,
      });
      caches.push(this.keySecret);
    }
    const deadline = Date.now() + INFORMER_SYNC_TIMEOUT_MS;
    while (!caches.every((c) => c.synced())) {
      if (Date.now() > deadline) throw new Error("encryption: informers did not sync within 30 s");
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Every other node of every cluster (local cluster from Node + MeshNode, remote from the kvstore). */
  private remotes(): EncryptionNodeRecord[] {
    const { local } = this.options;
    const localNodes = localClusterNodes(
      local.cluster,
      this.options.coreNodes(),
      this.meshNodes?.list() ?? [],
    ).filter((n) => n.name !== local.name);
    return [...localNodes, ...[...this.remoteClusters.values()].flatMap((m) => [...m.values()])];
  }

  private async sync(): Promise<void> {
    if (this.stopped) return;
    const at = new Date().toISOString();
    try {
      if (this.wireguard) await this.syncWireGuard();
      else if (this.ipsec) await this.syncIpsec();
      this.snapshot = { ...this.snapshot, lastSync: { at }, error: this.configError ?? this.backendProblem };
    } catch (error) {
      this.snapshot = { ...this.snapshot, lastSync: { at, error: errorChainSummary(error) } };
      throw error;
    }
  }

  private async syncWireGuard(): Promise<void> {
    const wg = this.wireguard as WireGuardManager;
    wg.setNodes(this.remotes());
    await wg.sync();
    const status = await wg.status();
    this.snapshot = {
      ...this.snapshot,
      interface: status.ifname,
      publicKey: status.publicKey,
      peers: status.peers.map((peer) => {
        const [cluster, ...rest] = peer.node.split("/");
        return {
          node: rest.join("/") || peer.node,
          cluster: rest.length ? cluster : "",
          endpoint: peer.endpoint,
          lastHandshake: peer.lastHandshake,
          rxBytes: peer.rxBytes,
          txBytes: peer.txBytes,
        };
      }),
      skipped: status.rejected.map((r) => ({ node: r.node, reason: r.reason, message: r.message })),
      skippedTotal: { ...status.rejectedTotal } as Record<string, number>,
      dropPrefixes: status.dropPrefixes,
    };
  }

  /** Reads the key Secret; a malformed one keeps the previous keys (and says why). */
  private refreshKeys(): void {
    const secret = this.keySecret?.get(IPSEC_KEYS_SECRET.name, IPSEC_KEYS_SECRET.namespace);
    const text = decodeSecretData(secret, IPSEC_KEYS_SECRET.key);
    if (text === this.keyText) return;
    this.keyText = text;
    if (text === undefined) {
      this.configError = this.keys
        ? `Secret ${IPSEC_KEYS_SECRET.namespace}/${IPSEC_KEYS_SECRET.name} is gone; keeping key ${this.keys.current.spi}`
        : `Secret ${IPSEC_KEYS_SECRET.namespace}/${IPSEC_KEYS_SECRET.name} (data "${IPSEC_KEYS_SECRET.key}") not found; remote pod traffic is dropped`;
    } else {
      try {
        this.keys = parseIpsecKeys(text);
        this.configError = undefined;
        this.options.log.info(
          { keyId: this.keys.current.spi, keys: this.keys.all.length },
          "ipsec: keys loaded",
        );
      } catch (error) {
        if (!(error instanceof IpsecKeyError)) throw error;
        this.configError = `${error.message}${this.keys ? `; keeping key ${this.keys.current.spi}` : "; remote pod traffic is dropped"}`;
      }
    }
    if (this.configError) this.options.log.error({ problem: this.configError }, "ipsec: key secret problem");
  }

  private async syncIpsec(): Promise<void> {
    const ipsec = this.ipsec as IpsecBackend;
    const { local } = this.options;
    this.refreshKeys();
    const remotes = this.remotes();
    const keys = this.keys;
    if (!keys) {
      // nothing can be encrypted yet: drop, never send plain
      const drop = remotes.flatMap(nodePrefixesOf);
      await syncEncryptionRoutes(encryptionRoutes(ROUTER_DEVICE, [], drop));
      this.recordSkipped(remotes.map((r) => ({ node: `${r.cluster}/${r.name}`, reason: "no-keys" })));
      this.snapshot = { ...this.snapshot, peers: [], dropPrefixes: drop.sort() };
      return;
    }
    const localNode = xfrmNode(local.cluster, local.name, local.nodeIp, local.podCidrs, local.bootId);
    const plan = planIpsecPeers({
      localIp: local.nodeIp,
      remotes,
      keys,
      holdsBackKeyFor: (ip) => ipsec.holdsBackKeyFor({ ...localNode, ip }),
    });
    const dropPrefixes = plan.skipped.flatMap((s) => s.prefixes).sort();
    const peers = plan.peers.map(({ remote, keys: pairKeys }) => ({
      ...xfrmNode(remote.cluster, remote.name, remote.nodeIp, nodePrefixesOf(remote), remote.bootId),
      keys: pairKeys,
    }));
    // the backend is reconfigured only when something changed or a pair still lacks its SAs
    const signature = JSON.stringify({
      peers: peers.map((p) => [p.node, p.ip, p.podCidrs, p.bootId, p.keys?.current.spi]),
      keys: this.keyText,
      dropPrefixes,
    });
    if (signature !== this.ipsecSignature || this.ipsecNeedsRetry) {
      const result = await ipsec.sync(peers, keys, { dropPrefixes });
      this.ipsecSignature = signature;
      this.ipsecNeedsRetry = result.retry;
    }
    const report = await ipsec.report(peers);
    if (report.incomplete) this.ipsecNeedsRetry = true;
    // Every pair now accepts the current key inbound: advertise it, so peers switch over.
    if (this.publishedSpi !== keys.current.spi) {
      this.publishedSpi = keys.current.spi;
      this.options.onPublishedChange();
    }
    this.recordSkipped(plan.skipped.map((s) => ({ node: s.node, reason: s.reason })));
    this.snapshot = {
      ...this.snapshot,
      keyId: keys.current.spi,
      peers: plan.peers.map(({ remote }) => ({
        node: remote.name,
        cluster: remote.cluster,
        endpoint: remote.nodeIp,
        ...report.peers[`${remote.cluster}/${remote.name}`],
      })),
      saCounts: report.saCounts,
      xfrmStates: report.xfrmStates,
      dropPrefixes,
    };
  }

  private recordSkipped(skipped: { node: string; reason: string }[]): void {
    const now = new Map(skipped.map((s) => [s.node, s.reason]));
    for (const [node, reason] of now) {
      if (this.previouslySkipped.get(node) !== reason) {
        this.skippedTotal[reason] = (this.skippedTotal[reason] ?? 0) + 1;
        this.options.log.warn({ node, reason }, "ipsec: node skipped as peer; its prefixes are dropped");
      }
    }
    this.previouslySkipped = now;
    this.snapshot = { ...this.snapshot, skipped, skippedTotal: { ...this.skippedTotal } };
  }
}

function xfrmNode(
  cluster: string,
  name: string,
  ip: string,
  podCidrs: readonly string[],
  bootId: string | undefined,
): XfrmNode {
  return { node: `${cluster}/${name}`, ip, podCidrs, bootId: bootId ?? "" };
}

/**
 * The node's router IP (first host address of its pod CIDR, which IPAM never hands out) on a veth
 * pair of its own: libipsec uses it as the source of its routes to remote pod CIDRs and refuses a
 * CHILD_SA without it. Idempotent (agent restarts).
 */
async function ensureRouterAddress(podCidr: string): Promise<void> {
  const address = nthAddress(parseCidr(podCidr), 1);
  try {
    await run(["ip", "link", "show", "dev", ROUTER_DEVICE]);
  } catch (error) {
    if (!(error instanceof CommandError)) throw error;
    await run(["ip", "link", "add", ROUTER_DEVICE, "type", "veth", "peer", "name", ROUTER_PEER_DEVICE]);
  }
  await run(["ip", "addr", "replace", `${address}/32`, "dev", ROUTER_DEVICE]);
  await run(["ip", "link", "set", ROUTER_PEER_DEVICE, "up"]);
  await run(["ip", "link", "set", ROUTER_DEVICE, "up"]);
}

/** Cilium's annotation on the core Node, for tools that read it there (the MeshNode carries it too). */
async function annotateNode(kubeConfig: KubeConfig, node: string, publicKey: string): Promise<void> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  await core.patchNode(
    { name: node, body: { metadata: { annotations: { [WIREGUARD_PUBKEY_ANNOTATION]: publicKey } } } },
    setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
  );
}

/** A charon of a crashed agent still holds the IKE ports: stop it by its recorded PID. */
async function stopLeftoverCharon(dir: string, log: Logger): Promise<void> {
  let ref: ProcessRef | undefined;
  try {
    ref = JSON.parse(readFileSync(strongSwanPaths(dir).pidRecord, "utf8")) as ProcessRef;
  } catch {
    // no record (ENOENT: no charon was started) or a torn one: no PID to stop
    return;
  }
  if (ref && isRunning(ref)) {
    log.info({ pid: ref.pid }, "ipsec: stopping the charon of a previous agent");
    await stopProcess(ref);
  }
}
