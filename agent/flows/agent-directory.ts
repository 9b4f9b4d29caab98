/** The flow directory's inputs from what the agent holds (pure mapping; agent.ts supplies the lists). */
import type { V1Service } from "@kubernetes/client-node";
import type { DesiredDatapathState } from "../../bpf/datapath/reconcile.js";
import type { MeshEndpoint, MeshIdentity } from "../../lib/api/crds.js";
import type { IPIdentityPair } from "../../lib/kvstore/values/ipcache.js";
import type { NodeValue } from "../../lib/kvstore/values/node.js";
import type { EndpointRecord } from "../endpoints/store.js";
import type { DirectoryInputs, IdentityRef, NodeRef, PodRef } from "./directory.js";

export interface AgentDirectorySources {
  clusterName: string;
  desired?: DesiredDatapathState;
  endpoints: readonly EndpointRecord[];
  meshEndpoints: readonly MeshEndpoint[];
  identities: readonly MeshIdentity[];
  remoteClusters: readonly { name: string; ipcache: readonly IPIdentityPair[] }[];
  remoteIdentities: readonly IdentityRef[];
  /** this node's IP and its cluster's nodes (name, InternalIP) */
  localNodeIp?: string;
  localNodes?: readonly { name: string; ip?: string }[];
  remoteNodes?: readonly NodeValue[];
}

export function agentDirectoryInputs(sources: AgentDirectorySources): DirectoryInputs {
  const pods: PodRef[] = [];
  for (const remote of sources.remoteClusters) {
    for (const entry of remote.ipcache) {
      if (entry.K8sPodName && entry.K8sNamespace)
        pods.push({
          ip: entry.IP,
          namespace: entry.K8sNamespace,
          name: entry.K8sPodName,
          cluster: remote.name,
        });
    }
  }
  for (const endpoint of sources.meshEndpoints) {
    for (const address of endpoint.status?.networking?.addressing ?? []) {
      if (address?.ipv4)
        pods.push({
          ip: address.ipv4,
          namespace: endpoint.metadata.namespace,
          name: endpoint.metadata.name,
          cluster: sources.clusterName,
        });
    }
  }
  for (const record of sources.endpoints) {
    pods.push({
      ip: record.ip,
      namespace: record.podNamespace,
      name: record.podName,
      cluster: sources.clusterName,
    });
  }
  const identities: IdentityRef[] = [...sources.remoteIdentities];
  for (const identity of sources.identities) {
    const id = Number(identity.metadata.name);
    if (!Number.isInteger(id)) continue;
    const labels = Object.entries(identity["security-labels"] ?? {}).map(([key, value]) => `${key}=${value}`);
    identities.push({ id, labels, cluster: sources.clusterName });
  }
  const nodes: NodeRef[] = [];
  for (const node of sources.remoteNodes ?? []) {
    for (const address of node.IPAddresses ?? [])
      nodes.push({ ip: address.IP, name: node.Name, cluster: node.Cluster, local: false });
  }
  for (const node of sources.localNodes ?? []) {
    if (node.ip)
      nodes.push({
        ip: node.ip,
        name: node.name,
        cluster: sources.clusterName,
        local: node.ip === sources.localNodeIp,
      });
  }
  return {
    clusterName: sources.clusterName,
    nodes,
    datapath: sources.desired ?? { endpoints: [], remoteNodes: [], ipcache: [] },
    pods,
    identities,
  };
}

/** The Service a ClusterIP:port belongs to. */
export function serviceByFrontend(
  services: readonly V1Service[],
  address: string,
  port: number,
): { name: string; namespace: string } | undefined {
  for (const service of services) {
    const ips = service.spec?.clusterIPs ?? (service.spec?.clusterIP ? [service.spec.clusterIP] : []);
    if (!ips.includes(address)) continue;
    if (!(service.spec?.ports ?? []).some((p) => p.port === port)) continue;
    return { name: service.metadata?.name ?? "", namespace: service.metadata?.namespace ?? "" };
  }
  return undefined;
}
