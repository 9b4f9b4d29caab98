/**
 * WireGuard for one node, end to end: key pair (state dir), device (kernel or wireguard-go),
 * peers reconciled from node records (planPeers), routes of peer prefixes via the device and drop
 * routes for rejected peers, rejection counters and status. The agent calls upsertNode/removeNode
 * as it learns nodes of its own and remote clusters, then sync(); syncs are serialised.
 */
import type { Logger } from "../../../lib/log.js";
import { silentLogger } from "../../../lib/log.js";
import { type DropRouteType, encryptionRoutes, syncEncryptionRoutes } from "../routes.js";
import { WIREGUARD_MTU, WIREGUARD_PORT, type WireGuardBackend, WireGuardDevice } from "./device.js";
import { WireGuardKeyPair } from "./keys.js";
import {
  type EncryptionNode,
  nodeId,
  type PeerPlan,
  type PeerRejection,
  type PeerRejectReason,
  planPeers,
} from "./peers.js";

/** Annotation (and node-record field `WireguardPubKey`) carrying the public key, as Cilium. */
export const WIREGUARD_PUBKEY_ANNOTATION = "network.cilium.io/wg-pub-key";

export interface WireGuardManagerOptions {
  local: { cluster: string; name: string };
  stateDir: string;
  ifname: string;
  netns?: string;
  port?: number;
  mtu?: number;
  forceUserspace?: boolean;
  persistentKeepaliveSeconds?: number;
  dropRouteType?: DropRouteType;
  /** Route table for peer and drop routes (default: main). */
  routeTable?: number;
  log?: Logger;
}

export interface WireGuardPeerStatus {
  node: string;
  publicKey: string;
  endpoint?: string;
  allowedIps: string[];
  lastHandshake?: string;
  rxBytes: number;
  txBytes: number;
}

export interface WireGuardStatus {
  mode: "wireguard";
  backend: WireGuardBackend;
  ifname: string;
  pid?: number;
  port: number;
  publicKey: string;
  peers: WireGuardPeerStatus[];
  rejected: PeerRejection[];
  rejectedTotal: Partial<Record<PeerRejectReason, number>>;
  dropPrefixes: string[];
}

export class WireGuardManager {
  private readonly nodes = new Map<string, EncryptionNode>();
  private lastPlan: PeerPlan | undefined;
  private readonly rejectedTotal: Partial<Record<PeerRejectReason, number>> = {};
  private previouslyRejected = new Map<string, PeerRejectReason>();
  private queue: Promise<unknown> = Promise.resolve();
  private readonly log: Logger;

  private constructor(
    private readonly options: WireGuardManagerOptions,
    readonly keys: WireGuardKeyPair,
    readonly device: WireGuardDevice,
  ) {
    this.log = options.log ?? silentLogger();
  }

  static async start(options: WireGuardManagerOptions): Promise<WireGuardManager> {
    const keys = WireGuardKeyPair.loadOrCreate(options.stateDir);
    const device = await WireGuardDevice.ensure({
      ifname: options.ifname,
      stateDir: options.stateDir,
      netns: options.netns,
      mtu: options.mtu ?? WIREGUARD_MTU,
      forceUserspace: options.forceUserspace,
      log: options.log,
    });
    try {
      await device.configurator.set(
        { privateKeyHex: keys.privateKeyHex(), listenPort: options.port ?? WIREGUARD_PORT },
        [],
      );
    } catch (error) {
      await device.stop();
      throw error;
    }
    return new WireGuardManager(options, keys, device);
  }

  /** The base64 public key to publish on the node record (WireguardPubKey + annotation). */
  get publicKey(): string {
    return this.keys.publicKey;
  }

  upsertNode(node: EncryptionNode): void {
    this.nodes.set(nodeId(node), node);
  }

  removeNode(node: { cluster: string; name: string }): void {
    this.nodes.delete(nodeId(node));
  }

  /** Replaces the whole node set (e.g. after a resync of a remote cluster). */
  setNodes(nodes: readonly EncryptionNode[]): void {
    this.nodes.clear();
    for (const node of nodes) this.upsertNode(node);
  }

  /** Brings device peers and routes to the desired state; returns the plan that was applied. */
  sync(): Promise<PeerPlan> {
    const next = this.queue.then(() => this.syncNow());
    // the caller gets the error through `next`; the queue only has to go on after it
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async syncNow(): Promise<PeerPlan> {
    const { configurator } = this.device;
    const current = await configurator.get();
    const plan = planPeers({
      local: { ...this.options.local, publicKey: this.keys.publicKey },
      nodes: [...this.nodes.values()],
      current: current.peers,
      port: this.options.port ?? WIREGUARD_PORT,
      persistentKeepaliveSeconds: this.options.persistentKeepaliveSeconds,
    });
    // Peers before routes: a prefix routed to the device with no peer for it is dropped by
    // WireGuard (never sent plain), so neither order of a change opens a plaintext window.
    const routes = encryptionRoutes(
      this.device.ifname,
      plan.peers.flatMap((p) => p.routed),
      plan.dropPrefixes,
      this.options.dropRouteType,
    );
    if (plan.changes.length > 0) await configurator.set({}, plan.changes);
    await syncEncryptionRoutes(routes, { netns: this.options.netns, table: this.options.routeTable });
    this.countRejections(plan.rejected);
    if (plan.changes.length > 0 || plan.rejected.length > 0) {
      this.log.info(
        {
          added: plan.added,
          updated: plan.updated,
          removed: plan.removed.length,
          rejected: plan.rejected,
          dropPrefixes: plan.dropPrefixes,
        },
        "wireguard: peers reconciled",
      );
    }
    this.lastPlan = plan;
    return plan;
  }

  /** Counts a rejection when a node enters (or changes) a rejected state, not on every sync. */
  private countRejections(rejected: readonly PeerRejection[]): void {
    const now = new Map(rejected.map((r) => [r.node, r.reason]));
    for (const [node, reason] of now) {
      if (this.previouslyRejected.get(node) !== reason) {
        this.rejectedTotal[reason] = (this.rejectedTotal[reason] ?? 0) + 1;
        this.log.warn({ node, reason }, "wireguard: node rejected as peer; its prefixes are dropped");
      }
    }
    this.previouslyRejected = now;
  }

  async status(): Promise<WireGuardStatus> {
    const state = await this.device.configurator.get();
    const nodeByKey = new Map((this.lastPlan?.peers ?? []).map((p) => [p.peer.publicKey, p.node]));
    return {
      mode: "wireguard",
      backend: this.device.backend,
      ifname: this.device.ifname,
      pid: this.device.pid,
      port: state.listenPort,
      publicKey: this.keys.publicKey,
      peers: state.peers.map((peer) => ({
        node: nodeByKey.get(peer.publicKey) ?? "unknown",
        publicKey: peer.publicKey,
        endpoint: peer.endpoint,
        allowedIps: peer.allowedIps,
        lastHandshake: peer.lastHandshakeMs > 0 ? new Date(peer.lastHandshakeMs).toISOString() : undefined,
        rxBytes: peer.rxBytes,
        txBytes: peer.txBytes,
      })),
      rejected: this.lastPlan?.rejected ?? [],
      rejectedTotal: { ...this.rejectedTotal },
      dropPrefixes: this.lastPlan?.dropPrefixes ?? [],
    };
  }

  /** Stops the device (wireguard-go by PID) and removes its routes; the key file stays for the next start. */
  async stop(): Promise<void> {
    await this.queue;
    await syncEncryptionRoutes([], { netns: this.options.netns, table: this.options.routeTable }).catch(
      (error) => this.log.warn({ err: error }, "wireguard: removing the encryption routes failed"),
    );
    await this.device.stop();
  }
}
