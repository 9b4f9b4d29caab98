/**
 * Pure decisions of the agent's encryption wiring: the mode's pod MTU, the node records encryption
 * works from (this cluster: core Node + MeshNode; remote clusters: kvstore node values), the
 * datapath change that hands remote pod traffic to the kernel's routing (and so to the WireGuard
 * device or ipsec0) instead of the VXLAN tunnel, and IPsec's per-pair key choice during rotation.
 */
import { isIPv4 } from "node:net";
import type { DesiredDatapathState, DesiredIpcacheEntry } from "../../bpf/datapath/reconcile.js";
import { expandRemoteNodes } from "../../bpf/datapath/reconcile.js";
import type { MeshNode } from "../../lib/api/crds.js";
import type { EncryptionMode, IpsecBackendChoice, IpsecBackendName } from "../../lib/api/encryption.js";
import { parseCidr } from "../../lib/cidr.js";
import type { NodeValue } from "../../lib/kvstore/values/node.js";
import type { NodeInfo } from "../datapath/desired.js";
import type { IpsecKeySet } from "./ipsec/keys.js";
import { LIBIPSEC_MTU } from "./ipsec/strongswan.js";
import type { EncryptionNode } from "./wireguard/peers.js";

/** IPv6 + UDP + WireGuard header + tag (Cilium's figure): pods get underlay - 80. */
export const WIREGUARD_OVERHEAD = 80;
/** Outer IPv4 + UDP (NAT-T) + ESP header, IV, padding, ICV: stays below 80 bytes. */
export const IPSEC_OVERHEAD = 80;

/** Pod MTU for a mode: encrypted pod packets are not VXLAN-encapsulated, only encrypted. */
export function encryptionPodMtu(mode: EncryptionMode, underlayMtu: number, vxlanOverhead: number): number {
  switch (mode) {
    case "wireguard":
      return underlayMtu - WIREGUARD_OVERHEAD;
    case "ipsec":
      // libipsec's ipsec0 has a fixed MTU of 1400
      return Math.min(LIBIPSEC_MTU, underlayMtu - IPSEC_OVERHEAD);
    default:
      return underlayMtu - vxlanOverhead;
  }
}

/** A node record as encryption needs it, plus the SPI the node advertises (IPsec rotation). */
export interface EncryptionNodeRecord extends EncryptionNode {
  /** `EncryptionKey` of the node record: the IPsec SPI the node uses for outbound traffic. */
  encryptionKey?: number;
}

/**
 * This cluster's nodes: every core Node with an IPv4 InternalIP and pod CIDR, completed by its
 * MeshNode (WireGuard key, boot id, IPsec SPI). A Node without a MeshNode stays in the list
 * without a key, so encryption rejects it and drops its prefixes rather than forgetting them.
 */
export function localClusterNodes(
  cluster: string,
  nodes: readonly NodeInfo[],
  meshNodes: readonly MeshNode[],
): EncryptionNodeRecord[] {
  const meshByName = new Map(meshNodes.map((m) => [m.metadata.name, m]));
  const records: EncryptionNodeRecord[] = [];
  for (const node of nodes) {
    const mesh = meshByName.get(node.name);
    const meshIp = mesh?.spec?.addresses?.find((a) => a.type === "InternalIP" && isIPv4(a.ip))?.ip;
    const nodeIp = node.internalIp ?? meshIp;
    if (!node.name || !nodeIp || node.podCidrs.length === 0) continue;
    records.push({
      cluster,
      name: node.name,
      nodeIp,
      podCidrs: node.podCidrs,
      wireguardPublicKey: mesh?.spec?.encryption?.wireguardPublicKey,
      bootId: mesh?.spec?.bootID,
      encryptionKey: mesh?.spec?.encryption?.key,
    });
  }
  return records;
}

/**
 * Remote clusters' nodes as encryption peers: only the nodes the mesh merge accepted (`accepted`:
 * its tunnel nodes, named "<cluster>/<node>", with the node IP it chose), completed by their
 * kvstore values (`WireguardPubKey`, `BootID`, `EncryptionKey`).
 */
export function remoteClusterNodes(
  clusters: readonly { name: string; nodes: readonly NodeValue[] }[],
  accepted: readonly NodeInfo[],
): EncryptionNodeRecord[] {
  const values = new Map<string, NodeValue>();
  for (const cluster of clusters)
    for (const node of cluster.nodes) values.set(`${cluster.name}/${node.Name}`, node);
  const records: EncryptionNodeRecord[] = [];
  for (const node of accepted) {
    const value = values.get(node.name);
    if (!value || !node.internalIp) continue;
    const cluster = node.name.slice(0, node.name.indexOf("/"));
    records.push({
      cluster,
      name: value.Name,
      nodeIp: node.internalIp,
      podCidrs: node.podCidrs,
      wireguardPublicKey: value.WireguardPubKey || undefined,
      bootId: value.BootID || undefined,
      encryptionKey: value.EncryptionKey || undefined,
    });
  }
  return records;
}

/**
 * With encryption on, remote pod prefixes must reach the kernel's routing: from-pod sends a packet
 * to the VXLAN device only when its ipcache entry has a tunnel endpoint, and to the stack
 * otherwise, where encryption's routes (WireGuard device, ipsec0, or a blackhole) take it. The
 * identities stay; only the tunnel endpoints go. Individual entries still win over node prefixes.
 */
export function withoutTunnels(desired: DesiredDatapathState): DesiredDatapathState {
  const strip = (entry: DesiredIpcacheEntry): DesiredIpcacheEntry => {
    const { tunnelEndpoint: _dropped, ...rest } = entry;
    return rest;
  };
  return {
    ...desired,
    remoteNodes: [],
    ipcache: [...expandRemoteNodes(desired.remoteNodes), ...desired.ipcache].map(strip),
  };
}

/** Every prefix encryption must cover for a node: its pod CIDRs and stray pod IPs. */
export function nodePrefixesOf(node: EncryptionNode): string[] {
  return [...node.podCidrs, ...(node.podIps ?? []).map((ip) => `${ip}/32`)];
}

export type IpsecSkipReason = "missing-boot-id" | "invalid-address" | "no-keys";

export interface IpsecPeerDecision {
  remote: EncryptionNodeRecord;
  /** Keys for this pair when they differ from the shared set (the initiator's rotation hold-back). */
  keys?: IpsecKeySet;
}

/** Boot ids shorter than Cilium's 36 characters would weaken (and change) the per-pair derivation. */
const BOOT_ID_MIN = 36;

/**
 * Which remotes can be IPsec peers, and with which key. During a rotation a node that holds back
 * (libipsec: the pair's IKE initiator, whose reauthentication only succeeds once both ends hold
 * the new PSK; kernel XFRM: every node, for its outbound state, which the peer can only decrypt
 * once it has the new key) keeps using the key the peer still advertises until it advertises the
 * new SPI.
 */
export function planIpsecPeers(input: {
  localIp: string;
  remotes: readonly EncryptionNodeRecord[];
  keys: IpsecKeySet;
  /** Whether this node keeps the old key for its pair with the node at `remoteIp` (the backend says). */
  holdsBackKeyFor: (remoteIp: string) => boolean;
}): { peers: IpsecPeerDecision[]; skipped: { node: string; reason: IpsecSkipReason; prefixes: string[] }[] } {
  const peers: IpsecPeerDecision[] = [];
  const skipped: { node: string; reason: IpsecSkipReason; prefixes: string[] }[] = [];
  for (const remote of input.remotes) {
    const id = `${remote.cluster}/${remote.name}`;
    let prefixes: string[];
    try {
      if (!isIPv4(remote.nodeIp)) throw new Error("not IPv4");
      prefixes = nodePrefixesOf(remote);
      for (const prefix of prefixes) parseCidr(prefix);
    } catch {
      skipped.push({ node: id, reason: "invalid-address", prefixes: [] });
      continue;
    }
    if (!remote.bootId || remote.bootId.length < BOOT_ID_MIN) {
      skipped.push({ node: id, reason: "missing-boot-id", prefixes });
      continue;
    }
    const advertised = remote.encryptionKey;
    const older =
      input.holdsBackKeyFor(remote.nodeIp) && advertised && advertised !== input.keys.current.spi
        ? input.keys.all.find((key) => key.spi === advertised)
        : undefined;
    peers.push(older ? { remote, keys: { current: older, all: input.keys.all } } : { remote });
  }
  return { peers, skipped };
}

/** `--ipsec-backend`: the ESP probe decides (auto), or the operator does. */
export interface IpsecBackendDecision {
  backend: IpsecBackendName;
  /** The kernel backend on a kernel without ESP: policies only, so encrypted traffic is dropped. */
  policiesOnly: boolean;
  /** Why this backend: the probe's finding and the flag (logged, shown in status). */
  detail: string;
  /** A choice that cannot encrypt (shown as the status error). */
  problem?: string;
}

/** auto: kernel XFRM where the kernel does ESP, strongSwan's userspace ESP elsewhere. */
export function chooseIpsecBackend(
  choice: IpsecBackendChoice,
  probe: { kernelEsp: boolean; detail: string },
): IpsecBackendDecision {
  if (choice === "libipsec")
    return {
      backend: "strongswan-libipsec",
      policiesOnly: false,
      detail: `--ipsec-backend=libipsec (probe: ${probe.detail})`,
    };
  if (choice === "kernel-xfrm")
    return probe.kernelEsp
      ? {
          backend: "kernel-xfrm",
          policiesOnly: false,
          detail: `--ipsec-backend=kernel-xfrm (probe: ${probe.detail})`,
        }
      : {
          backend: "kernel-xfrm",
          policiesOnly: true,
          detail: `--ipsec-backend=kernel-xfrm (probe: ${probe.detail})`,
          problem:
            "--ipsec-backend=kernel-xfrm on a kernel without ESP: XFRM policies are installed but no state can be, so pod traffic to other nodes is dropped; use --ipsec-backend=auto (strongSwan userspace ESP here)",
        };
  return probe.kernelEsp
    ? { backend: "kernel-xfrm", policiesOnly: false, detail: `kernel ESP probe: ${probe.detail}` }
    : { backend: "strongswan-libipsec", policiesOnly: false, detail: `kernel ESP probe: ${probe.detail}` };
}
