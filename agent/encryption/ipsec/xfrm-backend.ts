/**
 * IPsec with the kernel's ESP: XFRM states and policies from the pure model (xfrm.ts), plus
 * routes that hand remote pod prefixes to the underlay device, where the OUT policies encrypt
 * them (tunnel mode, outer header node IP to node IP) before any neighbour lookup. Routes never
 * get ahead of policies: a new peer's prefixes stay blackholed until its states and policies are
 * in, and prefixes of nodes that cannot be peers stay blackholed and under the catch-all block
 * policy. States, policies and routes outlive the agent (like its pinned BPF objects), so an agent
 * restart loses no packet; the model is kept on disk without key material to diff against.
 * `policiesOnly` is the kernel backend forced onto a kernel without ESP: no state can exist, so
 * the tunnel policies drop whatever should be encrypted (XfrmOutNoStates) — never plain text.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { formatCidr, parseCidr } from "../../../lib/cidr.js";
import type { Logger } from "../../../lib/log.js";
import { silentLogger } from "../../../lib/log.js";
import { encryptionRoutes, syncEncryptionRoutes } from "../routes.js";
import type { IpsecBackend, IpsecReport } from "./backend.js";
import { type InstalledXfrmState, KernelXfrm, listXfrmStates } from "./kernel.js";
import type { IpsecKeySet } from "./keys.js";
import { buildXfrmModel, type XfrmModel, type XfrmNode, type XfrmRemote } from "./xfrm.js";

export interface KernelXfrmIpsecOptions {
  local: XfrmNode;
  /** The device the node IP lives on: remote pod prefixes are routed to it (encrypted by policy). */
  underlayDevice: string;
  /** Per-node directory for the persisted model. */
  dir: string;
  netns?: string;
  policiesOnly?: boolean;
  log?: Logger;
}

export const XFRM_MODEL_FILE = "xfrm-model.json";

/** Prefixes whose OUT tunnel policy is in the model: their states and policies are installed. */
function tunnelledPrefixes(model: XfrmModel | undefined): Set<string> {
  return new Set(
    (model?.policies ?? []).filter((p) => p.dir === "out" && p.action === "allow").map((p) => p.dst),
  );
}

function normalise(prefix: string): string {
  return formatCidr(parseCidr(prefix));
}

/** Pure: how many ESP states the kernel holds for each peer, per direction. */
export function countPeerStates(
  local: XfrmNode,
  peers: readonly XfrmNode[],
  installed: readonly InstalledXfrmState[],
): { peers: Record<string, { in: number; out: number }>; total: { in: number; out: number } } {
  const total = { in: 0, out: 0 };
  const byPeer: Record<string, { in: number; out: number }> = {};
  for (const peer of peers) {
    const counts = {
      in: installed.filter((s) => s.src === peer.ip && s.dst === local.ip).length,
      out: installed.filter((s) => s.src === local.ip && s.dst === peer.ip).length,
    };
    byPeer[peer.node] = counts;
    total.in += counts.in;
    total.out += counts.out;
  }
  return { peers: byPeer, total };
}

export class KernelXfrmIpsec implements IpsecBackend {
  readonly name = "kernel-xfrm";
  private readonly xfrm: KernelXfrm;
  private readonly log: Logger;

  constructor(private readonly options: KernelXfrmIpsecOptions) {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    this.log = options.log ?? silentLogger();
    this.xfrm = new KernelXfrm({
      netns: options.netns,
      policiesOnly: options.policiesOnly,
      modelFile: join(options.dir, XFRM_MODEL_FILE),
    });
  }

  /** Each node owns its outbound state, so each holds back the new key until the peer has it. */
  holdsBackKeyFor(): boolean {
    return true;
  }

  async sync(
    peers: readonly XfrmRemote[],
    keys: IpsecKeySet,
    options: { dropPrefixes: readonly string[] },
  ): Promise<{ retry: boolean }> {
    const local = this.options.local;
    const wanted = peers.filter((p) => p.node !== local.node);
    const model = buildXfrmModel({
      local,
      remotes: wanted,
      keys,
      encryptedPrefixes: [...wanted.flatMap((p) => p.podCidrs), ...options.dropPrefixes],
    });
    const unusable = new Set(model.skipped.map((s) => s.node));
    for (const skipped of model.skipped)
      this.log.warn({ node: skipped.node, reason: skipped.reason }, "ipsec: node left out of XFRM");
    const drop = [
      ...options.dropPrefixes,
      ...wanted.filter((p) => unusable.has(p.node)).flatMap((p) => p.podCidrs),
    ];
    const routed = wanted.filter((p) => !unusable.has(p.node)).flatMap((p) => p.podCidrs);
    const routeOptions = { netns: this.options.netns };
    // New peers stay dropped until their states and policies exist; peers already tunnelled keep flowing.
    const ready = tunnelledPrefixes(this.xfrm.model);
    await syncEncryptionRoutes(
      encryptionRoutes(
        this.options.underlayDevice,
        routed.filter((p) => ready.has(normalise(p))),
        [...drop, ...routed.filter((p) => !ready.has(normalise(p)))],
      ),
      routeOptions,
    );
    await this.xfrm.sync(model);
    await syncEncryptionRoutes(encryptionRoutes(this.options.underlayDevice, routed, drop), routeOptions);
    return { retry: false };
  }

  async report(peers: readonly XfrmRemote[]): Promise<IpsecReport> {
    const installed = await listXfrmStates(this.options.netns);
    const counts = countPeerStates(this.options.local, peers, installed);
    const report: IpsecReport = { peers: {}, xfrmStates: counts.total, incomplete: false };
    for (const [node, states] of Object.entries(counts.peers)) report.peers[node] = { states };
    // Someone flushed states behind our back: forget them so the next sync adds them again.
    if (!this.options.policiesOnly && this.xfrm.forgetMissingStates(installed) > 0) report.incomplete = true;
    return report;
  }

  /** States, policies and routes stay: traffic keeps flowing, encrypted, while the agent restarts. */
  async stop(): Promise<void> {}

  /** Removes every state, policy and route of this backend (tests; switching backends). */
  async remove(): Promise<void> {
    await syncEncryptionRoutes([], { netns: this.options.netns });
    await this.xfrm.remove();
  }
}
