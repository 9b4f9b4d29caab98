/**
 * Turns what the connected remote clusters published into datapath inputs, trusting nothing: a
 * remote may only claim addresses that are its own. Pure.
 *   - nodes: need an IPv4 node IP no local node (or earlier remote) has, and pod CIDRs overlapping
 *     neither ours nor another remote's (overlapping pod CIDRs are unsupported, as in Cilium);
 *   - ipcache entries (ip/v1): the IP must be inside the remote's accepted pod CIDRs and the tunnel
 *     endpoint (HostIP) one of its accepted nodes; a remote `host` identity becomes `remote-node`;
 *   - service backends: only from shared services, only addresses inside the remote's pod CIDRs
 *     or its node IPs, and none at all while the remote's backends are withdrawn (TTL expired).
 * What a remote claims that is not its own is refused: counted per cluster and reason (`refused`),
 * logged, never programmed. What Cilium may legally publish but this datapath does not use (IPv6
 * and prefix entries, IPv6-only nodes, services not shared, backend addresses and ports the
 * decoder left out) is accepted and ignored: counted per cluster and reason (`ignored`), never
 * programmed, not an error.
 */
import { isIPv4 } from "node:net";
import type { DesiredIpcacheEntry, DesiredRemoteNode } from "../../bpf/datapath/reconcile.js";
import { parseCidr } from "../../lib/cidr.js";
import { keys } from "../../lib/kvstore/paths.js";
import { type IPIdentityPair, ipPairKeySuffix } from "../../lib/kvstore/values/ipcache.js";
import { type NodeValue, nodeIp } from "../../lib/kvstore/values/node.js";
import type { ClusterService } from "../../lib/kvstore/values/service.js";
import type { NodeInfo } from "../datapath/desired.js";
import { RESERVED_IDENTITY } from "../identity/labels.js";
import type { RemoteServiceBackends } from "../services/desired.js";

export interface RemoteClusterView {
  name: string;
  id: number;
  nodes: readonly NodeValue[];
  services: readonly ClusterService[];
  ipcache: readonly IPIdentityPair[];
  backendsWithdrawn: boolean;
}

/** A remote claims what is not its own (or what another cluster already has). */
export type RefuseReason = "node-ip-conflict" | "overlapping-cidr" | "foreign-address";

/**
 * Legal Cilium data this datapath does not use: IPv6 or prefix addresses, zoned addresses and
 * ports of an L4 protocol we do not program (left out by the decoder), services whose backends
 * are not shared — Cilium's clustermesh-apiserver publishes every service when external
 * workloads are enabled (SharedOnly: !allServices,
 * https://github.com/cilium/cilium/blob/v1.16.17/clustermesh-apiserver/clustermesh/root.go#L383)
 * and its agents skip the unshared ones (pkg/clustermesh/common/services.go, OnUpdate).
 */
export type IgnoreReason = "unsupported-address" | "unsupported-port" | "not-shared";

/** One remote entry (or one backend of a remote service) refused, with why. */
export interface DroppedEntry {
  cluster: string;
  kind: "nodes" | "ipcache" | "services";
  /** The etcd key the entry came from. */
  key: string;
  reason: RefuseReason;
  detail: string;
}

/** Identifies a drop across merges (a service drops each foreign backend separately). */
export const droppedEntryId = (d: DroppedEntry) => `${d.key} ${d.reason} ${d.detail}`;

export interface MeshDatapathInputs {
  remoteNodes: DesiredRemoteNode[];
  /** Remote nodes in the local NodeInfo shape, for the host's tunnel routes. */
  tunnelNodes: NodeInfo[];
  ipcache: DesiredIpcacheEntry[];
  /** "<namespace>/<name>" → per-cluster backends. */
  remoteBackends: Map<string, RemoteServiceBackends[]>;
  /** cluster → reason → number of entries (or backends) currently refused. */
  refused: Map<string, Partial<Record<RefuseReason, number>>>;
  /** Every entry currently refused, one by one (for logging each drop once). */
  dropped: DroppedEntry[];
  /** cluster → reason → number of legal entries (or parts of them) currently not used. */
  ignored: Map<string, Partial<Record<IgnoreReason, number>>>;
}

interface Range {
  first: number;
  last: number;
}

function ipv4Number(ip: string): number {
  const [a, b, c, d] = ip.split(".").map(Number);
  return ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
}

function ipv4Range(cidr: string): Range | undefined {
  try {
    const parsed = parseCidr(cidr);
    if (parsed.family !== 4) return undefined;
    const [ip, length] = cidr.split("/");
    const size = 2 ** (32 - Number(length));
    const first = Math.floor(ipv4Number(ip) / size) * size;
    return { first, last: first + size - 1 };
  } catch {
    return undefined;
  }
}

/** Sorted, non-overlapping ranges with a binary-search lookup. */
class RangeSet {
  private ranges: Range[] = [];

  overlaps(range: Range): boolean {
    return this.ranges.some((r) => r.first <= range.last && range.first <= r.last);
  }

  add(range: Range): void {
    this.ranges.push(range);
    this.ranges.sort((a, b) => a.first - b.first);
  }

  contains(ip: string): boolean {
    if (!isIPv4(ip)) return false;
    const value = ipv4Number(ip);
    let low = 0;
    let high = this.ranges.length - 1;
    while (low <= high) {
      const mid = (low + high) >> 1;
      const range = this.ranges[mid];
      if (value < range.first) high = mid - 1;
      else if (value > range.last) low = mid + 1;
      else return true;
    }
    return false;
  }
}

function podCidrsOf(node: NodeValue): string[] {
  return [node.IPv4AllocCIDR, ...(node.IPv4SecondaryAllocCIDRs ?? [])].filter(
    (c): c is string => typeof c === "string" && !c.includes(":"),
  );
}

export function meshDatapathInputs(
  localNodes: readonly NodeInfo[],
  remotes: readonly RemoteClusterView[],
): MeshDatapathInputs {
  const out: MeshDatapathInputs = {
    remoteNodes: [],
    tunnelNodes: [],
    ipcache: [],
    remoteBackends: new Map(),
    refused: new Map(),
    dropped: [],
    ignored: new Map(),
  };
  const claimedCidrs = new RangeSet();
  const claimedNodeIps = new Set<string>();
  for (const node of localNodes) {
    if (node.internalIp) claimedNodeIps.add(node.internalIp);
    for (const cidr of node.podCidrs) {
      const range = ipv4Range(cidr);
      if (range) claimedCidrs.add(range);
    }
  }

  // deterministic: when two remotes claim the same thing, the first by name keeps it
  for (const remote of [...remotes].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const refused: Partial<Record<RefuseReason, number>> = {};
    const refuse = (kind: DroppedEntry["kind"], key: string, reason: RefuseReason, detail: string) => {
      refused[reason] = (refused[reason] ?? 0) + 1;
      out.dropped.push({ cluster: remote.name, kind, key, reason, detail });
    };
    const ignored: Partial<Record<IgnoreReason, number>> = {};
    const ignore = (reason: IgnoreReason) => {
      ignored[reason] = (ignored[reason] ?? 0) + 1;
    };
    const ownCidrs = new RangeSet();
    const ownNodeIps = new Set<string>();
    for (const node of [...remote.nodes].sort((a, b) => (a.Name < b.Name ? -1 : 1))) {
      const ip = nodeIp(node, 4);
      const nodeKey = keys.node(remote.name, node.Name);
      if (!ip) {
        // an IPv6-only node: legal, but this datapath tunnels over IPv4 only
        ignore("unsupported-address");
        continue;
      }
      if (claimedNodeIps.has(ip)) {
        refuse("nodes", nodeKey, "node-ip-conflict", `node IP ${ip} is already another node's`);
        continue;
      }
      const ranges = podCidrsOf(node).map((cidr) => ({ cidr, range: ipv4Range(cidr) }));
      const overlapping = ranges.find(({ range }) => !range || claimedCidrs.overlaps(range));
      if (overlapping) {
        refuse(
          "nodes",
          nodeKey,
          "overlapping-cidr",
          `pod CIDR ${overlapping.cidr} ${overlapping.range ? "overlaps a local or earlier remote pod CIDR" : "is not an IPv4 CIDR"}`,
        );
        continue;
      }
      claimedNodeIps.add(ip);
      ownNodeIps.add(ip);
      for (const { range } of ranges) {
        claimedCidrs.add(range as Range);
        ownCidrs.add(range as Range);
      }
      const cidrs = ranges.map(({ cidr }) => cidr);
      out.remoteNodes.push({
        nodeIp: ip,
        podCidrs: cidrs,
        nodeIdentity: RESERVED_IDENTITY.remoteNode,
        podCidrIdentity: RESERVED_IDENTITY.world,
        remoteCluster: true,
        // the datapath trusts only identities of this cluster from this node (tunnel ingress)
        clusterId: remote.id,
      });
      out.tunnelNodes.push({ name: `${remote.name}/${node.Name}`, internalIp: ip, podCidrs: cidrs });
    }

    for (const pair of remote.ipcache) {
      const ipKey = keys.ip(ipPairKeySuffix(pair));
      if (!isIPv4(pair.IP) || (pair.prefixLength !== null && pair.prefixLength !== 32)) {
        ignore("unsupported-address");
        continue;
      }
      if (!ownCidrs.contains(pair.IP)) {
        refuse("ipcache", ipKey, "foreign-address", `IP ${pair.IP} is outside the remote's pod CIDRs`);
        continue;
      }
      if (!ownNodeIps.has(pair.HostIP)) {
        refuse(
          "ipcache",
          ipKey,
          "foreign-address",
          `tunnel endpoint ${pair.HostIP} is not one of the remote's nodes`,
        );
        continue;
      }
      out.ipcache.push({
        prefix: `${pair.IP}/32`,
        identity: pair.ID === RESERVED_IDENTITY.host ? RESERVED_IDENTITY.remoteNode : pair.ID,
        tunnelEndpoint: pair.HostIP,
        remoteCluster: true,
      });
    }

    if (!remote.backendsWithdrawn) {
      for (const service of remote.services) {
        if (!service.shared) {
          ignore("not-shared");
          continue;
        }
        for (const part of service.leftOut ?? []) ignore(part.reason);
        const backends: RemoteServiceBackends["backends"] = {};
        const serviceKey = keys.service(remote.name, service.namespace, service.name);
        for (const [address, ports] of Object.entries(service.backends)) {
          if (!isIPv4(address)) ignore("unsupported-address");
          else if (!ownCidrs.contains(address) && !ownNodeIps.has(address))
            refuse(
              "services",
              serviceKey,
              "foreign-address",
              `backend ${address} is outside the remote's pod CIDRs and node IPs`,
            );
          else (backends as Record<string, typeof ports>)[address] = ports;
        }
        if (Object.keys(backends).length === 0) continue;
        const key = `${service.namespace}/${service.name}`;
        out.remoteBackends.set(key, [
          ...(out.remoteBackends.get(key) ?? []),
          { cluster: remote.name, backends },
        ]);
      }
    }
    out.refused.set(remote.name, refused);
    out.ignored.set(remote.name, ignored);
  }
  return out;
}
