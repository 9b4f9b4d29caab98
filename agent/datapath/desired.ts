/**
 * The node's desired datapath, computed from the informer caches and the local endpoints. Pure:
 * the controller feeds it to bpf/datapath's reconcileDatapath and applies the ops.
 */
import { isIPv4 } from "node:net";
import type { V1Node } from "@kubernetes/client-node";
import type {
  DesiredDatapathState,
  DesiredEndpoint,
  DesiredIpcacheEntry,
  DesiredRemoteNode,
  DesiredService,
} from "../../bpf/datapath/reconcile.js";
import type { MeshEndpoint } from "../../lib/api/crds.js";
import { cidrContains, nthAddress, parseCidr } from "../../lib/cidr.js";
import type { EndpointRecord } from "../endpoints/store.js";
import { RESERVED_IDENTITY } from "../identity/labels.js";

export interface NodeInfo {
  name: string;
  internalIp: string | undefined;
  podCidrs: string[];
}

export function nodeInfo(node: V1Node): NodeInfo {
  const internalIp = node.status?.addresses?.find(
    (a) => a.type === "InternalIP" && isIPv4(a.address),
  )?.address;
  const cidrs = node.spec?.podCIDRs?.length
    ? node.spec.podCIDRs
    : node.spec?.podCIDR
      ? [node.spec.podCIDR]
      : [];
  const podCidrs = cidrs.filter((cidr) => {
    try {
      return parseCidr(cidr).family === 4;
    } catch {
      return false;
    }
  });
  return { name: node.metadata?.name ?? "", internalIp, podCidrs };
}

export interface RemotePod {
  ip: string;
  identity: number;
  nodeIp: string;
}

/** Pods of other nodes, from their MeshEndpoints (skips this node's and malformed ones). */
export function remotePods(endpoints: readonly MeshEndpoint[], localNodeIp: string | undefined): RemotePod[] {
  const pods: RemotePod[] = [];
  for (const endpoint of endpoints) {
    const status = endpoint.status;
    const nodeIp = status?.networking?.node;
    const identity = status?.identity?.id;
    if (!nodeIp || !isIPv4(nodeIp) || nodeIp === localNodeIp || !Number.isInteger(identity)) continue;
    for (const address of status.networking.addressing ?? []) {
      if (address?.ipv4 && isIPv4(address.ipv4)) pods.push({ ip: address.ipv4, identity, nodeIp });
    }
  }
  return pods;
}

export interface DatapathInputs {
  localNode: string;
  /** This cluster's id: the nodes of this cluster may send only its identities over the tunnel. */
  clusterId?: number;
  /** An endpoint's network policy flags (agent/policy/), by endpoint id; absent: none. */
  policyFlags?: (endpoint: string) => number;
  /** Prefixes CIDR policy rules name, with their identities (no tunnel: longer prefixes win). */
  cidrIdentities?: readonly { prefix: string; identity: number }[];
  nodes: readonly NodeInfo[];
  endpoints: readonly EndpointRecord[];
  services: DesiredService[];
  remotePods: readonly RemotePod[];
  /** Nodes and endpoints of connected remote clusters (agent/clustermesh, already validated). */
  remoteClusters?: { remoteNodes: readonly DesiredRemoteNode[]; ipcache: readonly DesiredIpcacheEntry[] };
}

export function desiredDatapath(inputs: DatapathInputs): DesiredDatapathState {
  const endpoints: DesiredEndpoint[] = inputs.endpoints
    .filter((record) => record.ifindex !== undefined)
    .map((record) => ({
      address: record.ip,
      ifindex: record.ifindex as number,
      identity: record.identity,
      mac: record.podMac,
      nodeMac: record.hostMac,
      ...(inputs.policyFlags ? { policyFlags: inputs.policyFlags(record.id) } : {}),
    }));
  const remoteNodes: DesiredRemoteNode[] = [];
  for (const node of inputs.nodes) {
    if (node.name === inputs.localNode || !node.internalIp || node.podCidrs.length === 0) continue;
    remoteNodes.push({
      nodeIp: node.internalIp,
      podCidrs: node.podCidrs,
      nodeIdentity: RESERVED_IDENTITY.remoteNode,
      podCidrIdentity: RESERVED_IDENTITY.world,
      ...(inputs.clusterId ? { clusterId: inputs.clusterId } : {}),
    });
  }
  // first: an endpoint or pod entry of the same prefix comes later and wins
  const ipcache: DesiredIpcacheEntry[] = (inputs.cidrIdentities ?? []).map(({ prefix, identity }) => ({
    prefix,
    identity,
  }));
  const seen = new Set<string>();
  for (const record of inputs.endpoints) {
    seen.add(record.ip);
    ipcache.push({ prefix: `${record.ip}/32`, identity: record.identity });
  }
  const remoteNodeIps = new Set(remoteNodes.map((n) => n.nodeIp));
  for (const pod of inputs.remotePods) {
    // only pods whose node we tunnel to, and never one of ours (a stale record elsewhere)
    if (seen.has(pod.ip) || !remoteNodeIps.has(pod.nodeIp)) continue;
    seen.add(pod.ip);
    ipcache.push({ prefix: `${pod.ip}/32`, identity: pod.identity, tunnelEndpoint: pod.nodeIp });
  }
  remoteNodes.push(...(inputs.remoteClusters?.remoteNodes ?? []));
  for (const entry of inputs.remoteClusters?.ipcache ?? []) {
    // local endpoints and in-cluster pods win over anything a remote cluster claims
    const ip = entry.prefix.split("/")[0];
    if (seen.has(ip)) continue;
    seen.add(ip);
    ipcache.push(entry);
  }
  return { services: inputs.services, endpoints, remoteNodes, ipcache };
}

/** Whether an address may be a service backend: inside some node's pod CIDR, or a node's IP. */
export function knownAddressPredicate(nodes: readonly NodeInfo[]): (ip: string) => boolean {
  const cidrs = nodes.flatMap((n) => n.podCidrs.map((c) => parseCidr(c)));
  const nodeIps = new Set(nodes.map((n) => n.internalIp).filter(Boolean));
  return (ip) => nodeIps.has(ip) || cidrs.some((cidr) => cidrContains(cidr, ip));
}

export interface TunnelRoute {
  /** the remote node's pod CIDR */
  cidr: string;
  /** next hop: the CIDR's first address, resolved by a permanent neigh entry to the node's VTEP MAC */
  via: string;
  mac: string;
  nodeIp: string;
}

/** Deterministic VTEP MAC of a node: 02:4d + its IPv4 address. */
export function tunnelMac(nodeIp: string): string {
  return ["02", "4d", ...nodeIp.split(".").map((o) => Number(o).toString(16).padStart(2, "0"))].join(":");
}

export function tunnelRoutes(localNode: string, nodes: readonly NodeInfo[]): TunnelRoute[] {
  const routes: TunnelRoute[] = [];
  for (const node of nodes) {
    if (node.name === localNode || !node.internalIp) continue;
    for (const cidr of node.podCidrs) {
      routes.push({
        cidr,
        via: nthAddress(parseCidr(cidr), 0),
        mac: tunnelMac(node.internalIp),
        nodeIp: node.internalIp,
      });
    }
  }
  return routes;
}
