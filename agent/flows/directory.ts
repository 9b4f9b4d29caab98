/**
 * Who an address or identity is, for flows: pod, namespace, labels and cluster of both ends. A
 * snapshot built from what the agent already holds (its endpoints, its cluster's MeshEndpoints and
 * MeshIdentities, the remote clusters' ipcache entries and identities, the datapath's desired
 * state); remote identities' labels carry their cluster (io.cilium.k8s.policy.cluster).
 */

import type { DesiredDatapathState } from "../../bpf/datapath/reconcile.js";
import { AddressBook } from "../../bpf/flows/address-book.js";
import { RESERVED_IDENTITY } from "../identity/labels.js";

export const CLUSTER_LABEL = "io.cilium.k8s.policy.cluster";

export interface PodRef {
  ip: string;
  namespace: string;
  name: string;
  cluster: string;
}

export interface IdentityRef {
  id: number;
  labels: string[];
  cluster: string;
}

/** A node's address: flows to or from it name the node's cluster (Hubble shows such ends as host or remote-node). */
export interface NodeRef {
  ip: string;
  name: string;
  cluster: string;
  /** this agent's own node */
  local: boolean;
}

export interface DirectoryInputs {
  clusterName: string;
  nodes?: readonly NodeRef[];
  datapath: Pick<DesiredDatapathState, "endpoints" | "remoteNodes" | "ipcache">;
  pods: readonly PodRef[];
  identities: readonly IdentityRef[];
}

export interface EndpointView {
  identity: number;
  cluster?: string;
  namespace?: string;
  podName?: string;
  labels: string[];
}

const RESERVED_LABELS = new Map<number, string>(
  Object.entries(RESERVED_IDENTITY).map(([name, id]) => [
    id as number,
    `reserved:${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`,
  ]),
);

export class FlowDirectory {
  readonly addresses: AddressBook;
  private readonly pods = new Map<string, PodRef>();
  private readonly identities = new Map<number, IdentityRef>();
  private readonly nodes = new Map<string, NodeRef>();

  constructor(readonly inputs: DirectoryInputs) {
    this.addresses = new AddressBook(inputs.datapath);
    for (const pod of inputs.pods) this.pods.set(pod.ip, pod);
    for (const identity of inputs.identities) this.identities.set(identity.id, identity);
    for (const node of inputs.nodes ?? []) this.nodes.set(node.ip, node);
  }

  static empty(clusterName: string): FlowDirectory {
    return new FlowDirectory({
      clusterName,
      datapath: { endpoints: [], remoteNodes: [], ipcache: [] },
      pods: [],
      identities: [],
    });
  }

  endpoint(address: string, resolved: number): EndpointView {
    const node = this.nodes.get(address);
    // the datapath has no entry for its own node's address: it is the host
    const identity = node?.local && resolved === RESERVED_IDENTITY.world ? RESERVED_IDENTITY.host : resolved;
    const pod = this.pods.get(address);
    const known = this.identities.get(identity);
    const reserved = RESERVED_LABELS.get(identity);
    const labels = known?.labels ?? (reserved ? [reserved] : []);
    const clusterLabel = labels.find((label) => label.includes(`${CLUSTER_LABEL}=`));
    const cluster = pod?.cluster ?? node?.cluster ?? known?.cluster ?? clusterLabel?.split("=")[1];
    return {
      identity,
      ...(cluster ? { cluster } : {}),
      ...(pod ? { namespace: pod.namespace, podName: pod.name } : {}),
      labels,
    };
  }
}
