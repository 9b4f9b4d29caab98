/**
 * What the node's datapath should hold, from one snapshot of the caches, the local endpoints and
 * the connected remote clusters: the BPF maps' desired state and the tunnel device's routes. Pure:
 * datapath-loop.ts reads the inputs and applies the plan.
 */
import type { V1EndpointSlice, V1Service } from "@kubernetes/client-node";
import type { DesiredDatapathState } from "../../bpf/datapath/reconcile.js";
import type { MeshEndpoint } from "../../lib/api/crds.js";
import type { MeshDatapathInputs } from "../clustermesh/merge.js";
import {
  desiredDatapath,
  knownAddressPredicate,
  type NodeInfo,
  remotePods,
  type TunnelRoute,
  tunnelRoutes,
} from "../datapath/desired.js";
import { withoutTunnels } from "../encryption/plan.js";
import type { EndpointRecord } from "../endpoints/store.js";
import { desiredServices, type ServiceProblem } from "../services/desired.js";

export interface NodeDatapathInputs {
  nodeName: string;
  /** This cluster's id (the cluster of this cluster's nodes in the ipcache). */
  clusterId?: number;
  /** Endpoints' network policy flags by endpoint id (agent/policy/). */
  policyFlags?: (endpoint: string) => number;
  /** Prefixes of CIDR policy rules and their identities (agent/policy/). */
  cidrIdentities?: readonly { prefix: string; identity: number }[];
  /** This node's address: its own pods are not remote pods. */
  nodeIp: string | undefined;
  nodes: readonly NodeInfo[];
  endpoints: readonly EndpointRecord[];
  services: readonly V1Service[];
  endpointSlices: readonly V1EndpointSlice[];
  meshEndpoints: readonly MeshEndpoint[];
  /** Connected remote clusters as the mesh merge accepted them; undefined before clustermesh starts. */
  mesh: MeshDatapathInputs | undefined;
  /** Node-to-node encryption is on (any mode). */
  encrypt: boolean;
  onProblem: (problem: ServiceProblem) => void;
}

export interface NodeDatapathPlan {
  maps: DesiredDatapathState;
  tunnelRoutes: TunnelRoute[];
}

export function planNodeDatapath(inputs: NodeDatapathInputs): NodeDatapathPlan {
  const { nodes, mesh } = inputs;
  const services = desiredServices({
    services: inputs.services,
    endpointSlices: inputs.endpointSlices,
    // NodePort frontends for every node's address: a pod's connect() to any node's NodePort is
    // translated at the socket (or by from-pod) on the client's own node (see README: limits)
    nodeAddresses: nodes.map((n) => n.internalIp).filter((ip): ip is string => Boolean(ip)),
    isKnownAddress: knownAddressPredicate(nodes),
    onProblem: inputs.onProblem,
    remoteBackends: mesh?.remoteBackends,
  });
  const planned = desiredDatapath({
    localNode: inputs.nodeName,
    clusterId: inputs.clusterId,
    policyFlags: inputs.policyFlags,
    cidrIdentities: inputs.cidrIdentities,
    nodes,
    endpoints: inputs.endpoints,
    services,
    remotePods: remotePods(inputs.meshEndpoints, inputs.nodeIp),
    remoteClusters: mesh,
  });
  // Encryption on: remote pod traffic leaves through the kernel's routing (WireGuard device or
  // ipsec0, blackholes for nodes that cannot be peers), never through the VXLAN tunnel, even
  // before the encryption controller has started.
  if (inputs.encrypt) return { maps: withoutTunnels(planned), tunnelRoutes: [] };
  return {
    maps: planned,
    tunnelRoutes: tunnelRoutes(inputs.nodeName, [...nodes, ...(mesh?.tunnelNodes ?? [])]),
  };
}
