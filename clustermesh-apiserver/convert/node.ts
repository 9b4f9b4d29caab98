/**
 * Nodes → Cilium node values. Two sources: the core v1 Node (always there: InternalIP/ExternalIP,
 * podCIDRs) and the agent's MeshNode (CiliumInternalIP, encryption key, WireGuard key, boot id).
 * The published value merges both, MeshNode winning where it has data. Pure.
 */
import type { V1Node } from "@kubernetes/client-node";
import type { MeshNode } from "../../lib/api/crds.js";
import { emptyNode, type NodeAddress, type NodeValue } from "../../lib/kvstore/values/node.js";
import { isIp } from "../../lib/kvstore/wire-ip.js";
import type { PublishingCluster } from "./service.js";

export const WIREGUARD_KEY_ANNOTATION = "network.cilium.io/wg-pub-key";

const isV6 = (cidr: string) => cidr.includes(":");

function splitCidrs(node: NodeValue, cidrs: readonly string[]): void {
  const v4 = cidrs.filter((c) => !isV6(c));
  const v6 = cidrs.filter(isV6);
  node.IPv4AllocCIDR = v4[0] ?? null;
  node.IPv4SecondaryAllocCIDRs = v4.length > 1 ? v4.slice(1) : null;
  node.IPv6AllocCIDR = v6[0] ?? null;
  node.IPv6SecondaryAllocCIDRs = v6.length > 1 ? v6.slice(1) : null;
}

export function nodeValueFor(
  cluster: PublishingCluster,
  name: string,
  core: V1Node | undefined,
  mesh: MeshNode | undefined,
): NodeValue | undefined {
  if (!core && !mesh) return undefined;
  const node = emptyNode(name, cluster.name, cluster.id);
  const addresses: NodeAddress[] = [];
  const add = (type: NodeAddress["Type"], ip: string) => {
    if (isIp(ip) && !addresses.some((a) => a.Type === type && a.IP === ip))
      addresses.push({ Type: type, IP: ip });
  };
  for (const address of mesh?.spec?.addresses ?? []) add(address.type, address.ip);
  for (const address of core?.status?.addresses ?? []) {
    if (address.type === "InternalIP" || address.type === "ExternalIP") add(address.type, address.address);
  }
  node.IPAddresses = addresses.length > 0 ? addresses : null;
  const podCidrs = mesh?.spec?.ipam?.podCIDRs?.length
    ? mesh.spec.ipam.podCIDRs
    : (core?.spec?.podCIDRs ?? (core?.spec?.podCIDR ? [core.spec.podCIDR] : []));
  splitCidrs(node, podCidrs);
  const labels = { ...(core?.metadata?.labels ?? {}), ...(mesh?.metadata?.labels ?? {}) };
  node.Labels = Object.keys(labels).length > 0 ? labels : null;
  const wireguardKey = mesh?.spec?.encryption?.wireguardPublicKey;
  if (wireguardKey) {
    node.WireguardPubKey = wireguardKey;
    node.Annotations = { [WIREGUARD_KEY_ANNOTATION]: wireguardKey };
  }
  node.EncryptionKey = mesh?.spec?.encryption?.key ?? 0;
  node.BootID = mesh?.spec?.bootID ?? core?.status?.nodeInfo?.bootID ?? "";
  return node;
}
