import type { V1Node } from "@kubernetes/client-node";
import { type Cidr, cidrSize, cidrsOverlap, formatCidr, nthSubnet, parseCidr } from "../../lib/cidr.js";

/**
 * Node IPAM as kube-controller-manager's range allocator does it: every node gets one pod CIDR per
 * cluster pod subnet (one per IP family), never one already in use. The used set is rebuilt from the
 * nodes themselves, so a restarted controller never hands out a CIDR twice.
 */

export interface NodeCidrRequest {
  name: string;
  /** What the node already has (spec.podCIDRs, or spec.podCIDR on its own). */
  podCIDRs: string[];
}

export function nodePodCidrs(node: V1Node): string[] {
  if (node.spec?.podCIDRs?.length) return node.spec.podCIDRs;
  return node.spec?.podCIDR ? [node.spec.podCIDR] : [];
}

export interface IpamConfig {
  /** The cluster's pod subnets, at most one per family (e.g. "10.244.0.0/16,fd00:10:244::/56"). */
  clusterCidrs: Cidr[];
  /** Per-node prefix length for IPv4 (default 24) and IPv6 (default 64). */
  maskSizeV4: number;
  maskSizeV6: number;
}

export function ipamConfig(podSubnet: string, maskSizeV4 = 24, maskSizeV6 = 64): IpamConfig {
  const clusterCidrs = podSubnet
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean)
    .map(parseCidr);
  if (clusterCidrs.length === 0) throw new Error("--pod-subnet must name at least one CIDR");
  if (new Set(clusterCidrs.map((c) => c.family)).size !== clusterCidrs.length) {
    throw new Error(`--pod-subnet ${podSubnet} has two CIDRs of the same IP family`);
  }
  for (const cidr of clusterCidrs) {
    const mask = cidr.family === 4 ? maskSizeV4 : maskSizeV6;
    if (mask < cidr.prefixLength) {
      throw new Error(`node CIDR mask size /${mask} is larger than the pod subnet ${formatCidr(cidr)}`);
    }
  }
  return { clusterCidrs, maskSizeV4, maskSizeV6 };
}

/**
 * Decides the CIDRs for nodes that have none. `reserved` lists allocations made earlier that the
 * caller has not seen reflected on the nodes yet; they count as used. Nodes are served in the
 * given order. Returns node name → CIDRs (one per cluster CIDR, in the same order).
 */
export function allocateNodeCidrs(
  nodes: readonly NodeCidrRequest[],
  config: IpamConfig,
  reserved: ReadonlyMap<string, string[]> = new Map(),
): Map<string, string[]> {
  const used: Cidr[] = [];
  const alreadyServed = new Set<string>();
  for (const node of nodes) {
    if (node.podCIDRs.length > 0) alreadyServed.add(node.name);
    for (const text of node.podCIDRs) used.push(parseCidr(text));
  }
  for (const [name, cidrs] of reserved) {
    for (const text of cidrs) used.push(parseCidr(text));
    alreadyServed.add(name);
  }
  const result = new Map<string, string[]>();
  for (const node of nodes) {
    if (alreadyServed.has(node.name)) continue;
    const allocated: string[] = [];
    for (const clusterCidr of config.clusterCidrs) {
      const mask = clusterCidr.family === 4 ? config.maskSizeV4 : config.maskSizeV6;
      const count =
        cidrSize(clusterCidr) / cidrSize({ family: clusterCidr.family, network: 0n, prefixLength: mask });
      let found: Cidr | undefined;
      for (let index = 0n; index < count; index++) {
        const candidate = nthSubnet(clusterCidr, mask, Number(index));
        if (!used.some((u) => cidrsOverlap(u, candidate))) {
          found = candidate;
          break;
        }
      }
      if (!found) throw new Error(`pod subnet ${formatCidr(clusterCidr)} has no free /${mask} left`);
      used.push(found);
      allocated.push(formatCidr(found));
    }
    result.set(node.name, allocated);
  }
  return result;
}
