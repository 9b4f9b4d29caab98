/**
 * One cached remote cluster as the clustermesh-apiserver in KVStoreMesh mode reports it on
 * GET /v1/cluster of its health server: Cilium's models.RemoteCluster with its JSON names
 * (https://github.com/cilium/cilium/blob/main/api/v1/models/remote_cluster.go), plus the entries
 * the validation refused (ours).
 */
export const KVSTOREMESH_STATUS_PATH = "/v1/cluster";

export interface KvStoreMeshRemoteStatus {
  name: string;
  /** The etcd session to the remote is up. */
  connected: boolean;
  /** Connected, configuration retrieved, every kind listed and its cache canary written. */
  ready: boolean;
  status: string;
  config: { required: boolean; retrieved: boolean; "cluster-id"?: number; "sync-canaries"?: boolean };
  synced: { nodes: boolean; services: boolean; identities: boolean; endpoints: boolean };
  "num-nodes": number;
  "num-shared-services": number;
  "num-identities": number;
  "num-endpoints": number;
  "num-failures": number;
  "last-failure"?: string;
  /** Refused remote entries since the start, by reason (never written to the cache). */
  "rejected-total": Record<string, number>;
  /** Remote keys whose current value is refused, by reason. */
  "rejected-now": Record<string, number>;
}
