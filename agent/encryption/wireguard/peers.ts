/**
 * Pure WireGuard peer reconciliation: the desired peers (one per remote node of every connected
 * cluster, from its node record) against what the device holds now → the minimal UAPI changes.
 * A node that cannot be a peer is rejected with a reason and never affects the others; its
 * prefixes go to `dropPrefixes`, which the caller must blackhole (routes.ts) or drop in BPF, so a
 * node that should be encrypted never falls back to plain text.
 */
import { formatCidr, hostCidr, parseCidr, parseIp } from "../../../lib/cidr.js";
import { checkWireGuardKey } from "./keys.js";
import type { PeerChange, WireGuardPeerConfig } from "./uapi.js";

/** What encryption needs from a node record (local or remote cluster). */
export interface EncryptionNode {
  cluster: string;
  name: string;
  /** The node's underlay IP (InternalIP first, as Cilium): WireGuard endpoint / IPsec tunnel end. */
  nodeIp: string;
  podCidrs: readonly string[];
  /** Pod IPs outside podCidrs still reach the peer (e.g. learned from the remote ipcache). */
  podIps?: readonly string[];
  /** base64, from `WireguardPubKey` / the `network.cilium.io/wg-pub-key` annotation. */
  wireguardPublicKey?: string;
  /** `BootID` of the node record (IPsec per-pair keys). */
  bootId?: string;
}

export type PeerRejectReason =
  | "missing-public-key"
  | "invalid-public-key"
  | "duplicate-public-key"
  | "own-public-key"
  | "invalid-address"
  | "allowed-ip-conflict";

export interface PeerRejection {
  /** "cluster/name" */
  node: string;
  reason: PeerRejectReason;
  message: string;
}

export interface DesiredPeer {
  node: string;
  /** allowedIps: the routed prefixes and the node's own address (see planPeers). */
  peer: WireGuardPeerConfig;
  /** What is routed to the device for this peer: its pod prefixes, never its node address. */
  routed: string[];
}

export interface PeerPlan {
  peers: DesiredPeer[];
  /** Minimal changes for UapiClient.set: upserts for new or changed peers, removes for stale ones. */
  changes: PeerChange[];
  added: string[];
  updated: string[];
  /** Public keys removed from the device. */
  removed: string[];
  rejected: PeerRejection[];
  /** Prefixes of rejected nodes that no accepted peer owns: must be dropped, never sent plain. */
  dropPrefixes: string[];
}

export interface PeerPlanInput {
  local: { cluster: string; name: string; publicKey: string };
  nodes: readonly EncryptionNode[];
  /** The device's peers now (UapiClient.get().peers). */
  current: readonly WireGuardPeerConfig[];
  port: number;
  persistentKeepaliveSeconds?: number;
}

export function nodeId(node: { cluster: string; name: string }): string {
  return `${node.cluster}/${node.name}`;
}

export function formatEndpoint(ip: string, port: number): string {
  return parseIp(ip).family === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Normalised, sorted, de-duplicated prefixes; pod IPs already inside a pod CIDR are left out. */
export function nodePrefixes(node: EncryptionNode): string[] {
  const cidrs = node.podCidrs.map((text) => parseCidr(text));
  const result = new Set(cidrs.map(formatCidr));
  for (const ip of node.podIps ?? []) {
    const { family, value } = parseIp(ip);
    const bits = family === 4 ? 32 : 128;
    const inside = cidrs.some((cidr) => {
      if (cidr.family !== family) return false;
      const shift = BigInt(bits - cidr.prefixLength);
      return value >> shift === cidr.network >> shift;
    });
    if (!inside) result.add(formatCidr(parseCidr(`${ip}/${bits}`)));
  }
  return [...result].sort();
}

function sameAllowedIps(a: readonly string[], b: readonly string[]): boolean {
  const normalise = (list: readonly string[]) =>
    [...new Set(list.map((p) => formatCidr(parseCidr(p))))].sort();
  const x = normalise(a);
  const y = normalise(b);
  return x.length === y.length && x.every((value, i) => value === y[i]);
}

interface Candidate {
  id: string;
  node: EncryptionNode;
  prefixes: string[];
}

export function planPeers(input: PeerPlanInput): PeerPlan {
  const rejected: PeerRejection[] = [];
  const rejectedPrefixes: string[] = [];
  const reject = (
    candidate: Pick<Candidate, "id"> & { prefixes?: string[] },
    reason: PeerRejectReason,
    message: string,
  ) => {
    rejected.push({ node: candidate.id, reason, message });
    rejectedPrefixes.push(...(candidate.prefixes ?? []));
  };
  const localId = nodeId(input.local);
  const currentByKey = new Map(input.current.map((peer) => [peer.publicKey, peer]));

  // 1. Per-node checks, in a stable order so "first" is deterministic.
  const candidates: Candidate[] = [];
  for (const node of [...input.nodes].sort((a, b) => (nodeId(a) < nodeId(b) ? -1 : 1))) {
    const id = nodeId(node);
    if (id === localId) continue;
    let prefixes: string[];
    try {
      parseIp(node.nodeIp);
      prefixes = nodePrefixes(node);
    } catch (error) {
      // Without parseable prefixes there is nothing we could drop either; the node IP alone stays unrouted.
      reject({ id }, "invalid-address", (error as Error).message);
      continue;
    }
    const keyError = checkWireGuardKey(node.wireguardPublicKey);
    if (keyError === "missing") {
      reject({ id, prefixes }, "missing-public-key", "node record has no WireGuard public key");
    } else if (keyError) {
      reject(
        { id, prefixes },
        "invalid-public-key",
        `WireGuard public key is ${keyError} (want base64 of 32 bytes)`,
      );
    } else if (node.wireguardPublicKey === input.local.publicKey) {
      reject({ id, prefixes }, "own-public-key", "node announces this node's own public key");
    } else {
      candidates.push({ id, node, prefixes });
    }
  }

  // 2. One peer per key: the node already configured with that key (same endpoint) keeps it,
  //    else the first by cluster/name; a newcomer cannot steal an existing peer's key.
  const byKey = new Map<string, Candidate[]>();
  for (const candidate of candidates) {
    const key = candidate.node.wireguardPublicKey ?? "";
    byKey.set(key, [...(byKey.get(key) ?? []), candidate]);
  }
  const unique: Candidate[] = [];
  for (const [key, holders] of byKey) {
    const configured = currentByKey.get(key)?.endpoint;
    const keeper =
      holders.find((c) => formatEndpoint(c.node.nodeIp, input.port) === configured) ?? holders[0];
    unique.push(keeper);
    for (const other of holders) {
      if (other !== keeper) {
        reject(other, "duplicate-public-key", `public key already used by ${keeper.id}`);
      }
    }
  }
  unique.sort((a, b) => (a.id < b.id ? -1 : 1));

  // 3. WireGuard routes each allowed IP to exactly one peer: a second claim would silently move it.
  const owner = new Map<string, string>();
  const peers: DesiredPeer[] = [];
  for (const candidate of unique) {
    // The node's address is accepted as a source, not routed: a reply of the node's host stack
    // to one of our pods (a pod that called the node's address, e.g. the API server) comes
    // from it through the tunnel, because our pod prefixes are routed there on that node.
    // Routing it would send the tunnel's own UDP into the tunnel. Cilium does the same:
    // https://github.com/cilium/cilium/blob/v1.18.4/pkg/wireguard/agent/agent.go#L435-L443
    const allowedIps = [...new Set([...candidate.prefixes, hostCidr(candidate.node.nodeIp)])];
    const conflict = allowedIps.find((prefix) => owner.has(prefix));
    if (conflict) {
      reject(candidate, "allowed-ip-conflict", `${conflict} is already routed to ${owner.get(conflict)}`);
      continue;
    }
    for (const prefix of allowedIps) owner.set(prefix, candidate.id);
    peers.push({
      node: candidate.id,
      peer: {
        publicKey: candidate.node.wireguardPublicKey ?? "",
        endpoint: formatEndpoint(candidate.node.nodeIp, input.port),
        allowedIps,
        persistentKeepaliveSeconds: input.persistentKeepaliveSeconds ?? 0,
      },
      routed: candidate.prefixes,
    });
  }

  // 4. Minimal diff against the device.
  const changes: PeerChange[] = [];
  const added: string[] = [];
  const updated: string[] = [];
  const removed: string[] = [];
  const desiredKeys = new Set(peers.map((p) => p.peer.publicKey));
  for (const current of input.current) {
    if (!desiredKeys.has(current.publicKey)) {
      changes.push({ kind: "remove", publicKey: current.publicKey });
      removed.push(current.publicKey);
    }
  }
  for (const { node, peer } of peers) {
    const current = currentByKey.get(peer.publicKey);
    if (!current) {
      changes.push({ kind: "upsert", peer });
      added.push(node);
    } else if (
      current.endpoint !== peer.endpoint ||
      (current.persistentKeepaliveSeconds ?? 0) !== (peer.persistentKeepaliveSeconds ?? 0) ||
      !sameAllowedIps(current.allowedIps, peer.allowedIps)
    ) {
      changes.push({ kind: "upsert", peer });
      updated.push(node);
    }
  }

  const dropPrefixes = [...new Set(rejectedPrefixes.filter((prefix) => !owner.has(prefix)))].sort();
  return { peers, changes, added, updated, removed, rejected, dropPrefixes };
}
