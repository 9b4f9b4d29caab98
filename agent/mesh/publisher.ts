/**
 * Publishes this node's MeshNode and its pods' MeshEndpoints (what the clustermesh-apiserver
 * exports to other clusters and what other agents of this cluster build their ipcache from).
 * The diff is pure (planEndpointSync); the publisher applies it.
 */

import { MESH_API_VERSION, type MeshEndpoint, type MeshNode, NODE_LABEL } from "../../lib/api/crds.js";
import type { Logger } from "../../lib/log.js";
import type { EndpointRecord } from "../endpoints/store.js";
import type { MeshApi } from "../k8s/mesh-api.js";

export function meshEndpointFor(
  record: EndpointRecord,
  nodeName: string,
  nodeIp: string,
  encryptKey?: number,
): MeshEndpoint {
  return {
    apiVersion: MESH_API_VERSION,
    kind: "MeshEndpoint",
    metadata: {
      name: record.podName,
      namespace: record.podNamespace,
      labels: { [NODE_LABEL]: nodeName },
      ...(record.podUid
        ? { ownerReferences: [{ apiVersion: "v1", kind: "Pod", name: record.podName, uid: record.podUid }] }
        : {}),
    },
    status: {
      id: record.id,
      containerID: record.containerId,
      podUID: record.podUid,
      identity: { id: record.identity, labels: record.labels },
      networking: { addressing: [{ ipv4: record.ip }], node: nodeIp },
      namedPorts: record.namedPorts,
      ...(encryptKey ? { encryption: { key: encryptKey } } : {}),
      state: "ready",
    },
  };
}

export interface NodeFacts {
  nodeName: string;
  clusterName: string;
  clusterId: number;
  nodeIp: string;
  podCidrs: string[];
  /** What the encryption controller publishes (WireGuard key, IPsec SPI); absent when encryption is off. */
  encryption: MeshNode["spec"]["encryption"] | undefined;
  bootId: string | undefined;
}

/** This node's MeshNode (what other nodes and clusters route and encrypt to it by). */
export function meshNodeFor(facts: NodeFacts): MeshNode {
  return {
    apiVersion: MESH_API_VERSION,
    kind: "MeshNode",
    metadata: { name: facts.nodeName },
    spec: {
      addresses: [{ type: "InternalIP", ip: facts.nodeIp }],
      ipam: { podCIDRs: facts.podCidrs },
      ...(facts.encryption ? { encryption: facts.encryption } : {}),
      bootID: facts.bootId,
      clusterName: facts.clusterName,
      clusterID: facts.clusterId,
    },
  };
}

export interface EndpointSyncPlan {
  upsert: { desired: MeshEndpoint; current: MeshEndpoint | undefined }[];
  remove: MeshEndpoint[];
}

const objectKey = (e: { metadata: { namespace?: string; name: string } }) =>
  `${e.metadata.namespace}/${e.metadata.name}`;

/**
 * desired: this node's ready endpoints; existing: every MeshEndpoint the informer holds. Only objects
 * labelled with this node are ever removed (a pod re-created elsewhere under the same name belongs
 * to that node's agent).
 */
export function planEndpointSync(
  desired: readonly MeshEndpoint[],
  existing: readonly MeshEndpoint[],
  nodeName: string,
): EndpointSyncPlan {
  const existingByKey = new Map(existing.map((e) => [objectKey(e), e]));
  const desiredKeys = new Set<string>();
  const plan: EndpointSyncPlan = { upsert: [], remove: [] };
  for (const endpoint of desired) {
    const key = objectKey(endpoint);
    desiredKeys.add(key);
    const current = existingByKey.get(key);
    const same =
      current !== undefined &&
      JSON.stringify(current.status) === JSON.stringify(endpoint.status) &&
      current.metadata.labels?.[NODE_LABEL] === nodeName;
    if (!same) plan.upsert.push({ desired: endpoint, current });
  }
  for (const endpoint of existing) {
    if (endpoint.metadata.labels?.[NODE_LABEL] === nodeName && !desiredKeys.has(objectKey(endpoint))) {
      plan.remove.push(endpoint);
    }
  }
  return plan;
}

export class MeshPublisher {
  constructor(
    private readonly api: MeshApi,
    private readonly nodeName: string,
    private readonly log: Logger,
  ) {}

  async publishNode(node: MeshNode): Promise<void> {
    await this.api.upsertNode(node);
  }

  async syncEndpoints(
    records: readonly EndpointRecord[],
    existing: readonly MeshEndpoint[],
    nodeIp: string,
    encryptKey?: number,
  ): Promise<{ upserted: number; removed: number }> {
    const desired = records
      .filter((r) => r.state === "ready")
      .map((r) => meshEndpointFor(r, this.nodeName, nodeIp, encryptKey));
    const plan = planEndpointSync(desired, existing, this.nodeName);
    for (const { desired: endpoint, current } of plan.upsert)
      await this.api.upsertEndpoint(endpoint, current);
    for (const endpoint of plan.remove) {
      await this.api.deleteEndpoint(endpoint.metadata.namespace, endpoint.metadata.name);
      this.log.debug({ endpoint: objectKey(endpoint) }, "removed MeshEndpoint");
    }
    return { upserted: plan.upsert.length, removed: plan.remove.length };
  }
}
