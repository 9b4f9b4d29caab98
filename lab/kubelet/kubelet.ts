import type { V1Node, V1NodeStatus, V1Pod } from "@kubernetes/client-node";
import { errorChainSummary } from "../../lib/error-chain.js";
import type { Logger } from "../../lib/log.js";
import type { CniRuntime } from "./cni.js";
import type { ClusterDns } from "./dns.js";
import {
  type NetworkState,
  type NodeIdentity,
  nodeObject,
  nodeStatus,
  nodeStatusChanged,
  readyOf,
} from "./node-status.js";
import { type NodeContext, type PodApi, PodWorker, teardownRecord } from "./pod-worker.js";
import type { StateStore } from "./state.js";
import { type NodeFileSystem, SHARED_NODE_PATHS } from "./volumes.js";

/**
 * The lab kubelet: registers its Node, keeps the Ready condition (network config valid, and CNI
 * STATUS passing when the plugins speak CNI 1.1), and runs one PodWorker per pod bound to it.
 */

export interface KubeletApi extends PodApi {
  /** Delivers every pod bound to this node (and their deletion) until stopped. */
  watchPods(
    nodeName: string,
    onPod: (pod: V1Pod, deleted: boolean) => void,
  ): Promise<{ stop(): Promise<void> }>;
  /** Creates the node or, when it exists, merges labels/taints into it; returns the stored object. */
  registerNode(node: V1Node): Promise<V1Node>;
  /** `status` answers undefined when there is nothing to write. */
  updateNodeStatus(
    name: string,
    status: (previous: V1NodeStatus | undefined) => V1NodeStatus | undefined,
  ): Promise<void>;
  /** Creates or renews the node's Lease (kube-node-lease/<node>). */
  renewLease(node: { name: string; uid?: string }, durationSeconds: number): Promise<void>;
}

export interface KubeletOptions {
  identity: NodeIdentity;
  clusterName: string;
  /** What ClusterFirst pods resolve with (kube-dns); absent: pods use the host's resolv.conf. */
  dns?: ClusterDns;
  netnsPrefix: string;
  cgroupRoot: string;
  /** Where hostPath volumes are on this node; default: the host's own paths. */
  fileSystem?: NodeFileSystem;
  /** The node's image store file (images with layers, ./images.ts). */
  imageStore?: string;
  /** Extra /etc/hosts entries of host-network pods (the lab's node names, as kind's docker DNS). */
  nodeHostsFile?: string;
  cni: CniRuntime;
  state: StateStore;
  api: KubeletApi;
  log: Logger;
  /** How often the node status is computed (the kubelet's nodeStatusUpdateFrequency, 10 s). */
  heartbeatMs?: number;
  /** An unchanged status is written once per this (the kubelet's nodeStatusReportFrequency, 5 min). */
  statusReportMs?: number;
  /** Node lease renewal period (the kubelet renews every 10 s a lease of 40 s). */
  leaseRenewMs?: number;
  leaseDurationSeconds?: number;
  /** How often the CNI config dir is re-checked for readiness changes. */
  networkCheckMs?: number;
  restartBackoffMs?: number;
  sandboxRetryMs?: number;
}

export class Kubelet {
  private readonly workers = new Map<string, PodWorker>();
  private readonly context: NodeContext;
  private network: NetworkState = { ready: false, message: "cni plugin not initialized" };
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private networkTimer: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private nodeUid: string | undefined;
  private lastLeaseRenewal = 0;
  private watch: { stop(): Promise<void> } | undefined;
  private lastHeartbeat = 0;
  private lastStatusReport = 0;
  private stopping = false;

  constructor(private readonly options: KubeletOptions) {
    this.context = {
      nodeName: options.identity.name,
      nodeIps: options.identity.ips,
      clusterName: options.clusterName,
      dns: options.dns,
      netnsPrefix: options.netnsPrefix,
      cgroupRoot: options.cgroupRoot,
      fileSystem: options.fileSystem ?? { mapped: {}, shared: SHARED_NODE_PATHS },
      imageStore: options.imageStore,
      nodeHostsFile: options.nodeHostsFile,
      cni: options.cni,
      state: options.state,
      api: options.api,
      log: options.log,
      restartBackoffMs: options.restartBackoffMs,
      sandboxRetryMs: options.sandboxRetryMs,
    };
  }

  async start(): Promise<void> {
    const { log } = this.options;
    // Whatever a previous run left (its processes are no longer ours to supervise) goes first;
    // pods that still exist are started afresh below.
    for (const record of this.options.state.allPods()) {
      log.info({ pod: `${record.namespace}/${record.name}` }, "removing leftovers of a previous kubelet run");
      await teardownRecord(record, this.context, log);
    }
    this.network = await this.checkNetwork();
    const registered = await this.options.api.registerNode(nodeObject(this.options.identity, this.network));
    this.nodeUid = registered.metadata?.uid;
    await this.renewLease();
    this.leaseTimer = setInterval(() => void this.renewLease(), this.options.leaseRenewMs ?? 10_000);
    await this.heartbeat();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.options.heartbeatMs ?? 10_000);
    this.networkTimer = setInterval(() => void this.recheckNetwork(), this.options.networkCheckMs ?? 2_000);
    this.watch = await this.options.api.watchPods(this.options.identity.name, (pod, deleted) =>
      this.onPod(pod, deleted),
    );
    log.info({ node: this.options.identity.name, networkReady: this.network.ready }, "kubelet started");
  }

  async checkNetwork(): Promise<NetworkState> {
    try {
      const config = this.options.cni.config();
      await this.options.cni.status(config);
      return { ready: true, message: "" };
    } catch (error) {
      return { ready: false, message: errorChainSummary(error) };
    }
  }

  private async recheckNetwork(): Promise<void> {
    const network = await this.checkNetwork();
    if (network.ready !== this.network.ready || network.message !== this.network.message) {
      this.options.log.info({ ready: network.ready, message: network.message }, "network readiness changed");
      this.network = network;
      await this.heartbeat();
    }
  }

  private async renewLease(): Promise<void> {
    if (this.stopping) return;
    try {
      await this.options.api.renewLease(
        { name: this.options.identity.name, uid: this.nodeUid },
        this.options.leaseDurationSeconds ?? 40,
      );
      this.lastLeaseRenewal = Date.now();
    } catch (error) {
      this.options.log.warn(
        { err: (error as Error).message, lastRenewal: this.lastLeaseRenewal },
        "node lease renewal failed",
      );
    }
  }

  private async heartbeat(): Promise<void> {
    if (this.stopping) return;
    try {
      await this.options.api.updateNodeStatus(this.options.identity.name, (previous) => {
        const status = nodeStatus(this.options.identity, this.network, previous);
        const reportDue = Date.now() - this.lastStatusReport >= (this.options.statusReportMs ?? 300_000);
        if (!reportDue && !nodeStatusChanged(previous, status)) return undefined;
        if (readyOf(previous) !== readyOf(status))
          this.options.log.info({ ready: readyOf(status) }, "node Ready changed");
        this.lastStatusReport = Date.now();
        return status;
      });
      this.lastHeartbeat = Date.now();
    } catch (error) {
      this.options.log.warn({ err: error, lastHeartbeat: this.lastHeartbeat }, "node status update failed");
    }
  }

  private onPod(pod: V1Pod, deleted: boolean): void {
    const uid = pod.metadata?.uid ?? "";
    if (!uid || this.stopping) return;
    if (pod.spec?.nodeName !== this.options.identity.name) return;
    let worker = this.workers.get(uid);
    if (deleted) {
      worker?.update(undefined);
      return;
    }
    if (!worker) {
      // A finished pod that we never ran (e.g. after a restart) stays as reported.
      if (pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed") return;
      worker = new PodWorker(pod, this.context, (done) => this.workers.delete(done.uid));
      this.workers.set(uid, worker);
    }
    worker.update(pod);
  }

  findPod(namespace: string, name: string): PodWorker | undefined {
    for (const worker of this.workers.values())
      if (worker.namespace === namespace && worker.name === name) return worker;
    return undefined;
  }

  pods(): PodWorker[] {
    return [...this.workers.values()];
  }

  /** Stops watching and tears down every pod it runs (their API objects stay). */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.heartbeatTimer);
    clearInterval(this.networkTimer);
    clearInterval(this.leaseTimer);
    await this.watch?.stop();
    await Promise.all([...this.workers.values()].map((w) => w.shutdown()));
  }
}
