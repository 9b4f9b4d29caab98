/**
 * The Kubernetes objects (namespace kube-system) through which meshctl, the agents and the
 * clustermesh-apiserver agree on a cluster's mesh settings — our counterparts of Cilium's
 * cilium-config, cilium-ca, clustermesh-apiserver-*-cert and cilium-clustermesh.
 */
import { ENCRYPTION_MODES, type EncryptionMode, isEncryptionMode } from "../api/encryption.js";

export const MeshObjects = {
  /** ConfigMap: cluster-name, cluster-id, max-connected-clusters, tunnel-protocol, encryption. */
  config: "clustermesh-config",
  /** Secret: ca.crt, ca.key — the CA every certificate of the mesh is issued by. */
  ca: "clustermesh-ca",
  /** kubernetes.io/tls Secrets (ca.crt, tls.crt, tls.key). */
  serverCert: "clustermesh-apiserver-server-cert",
  adminCert: "clustermesh-apiserver-admin-cert",
  /** The client certificate this cluster's agents present to other clusters' etcds. */
  remoteCert: "clustermesh-apiserver-remote-cert",
  localCert: "clustermesh-apiserver-local-cert",
  /** Secret: one key per connected cluster (an etcd client config), as Cilium's cilium-clustermesh. */
  remotes: "clustermesh-remotes",
  /**
   * Secret: the remotes the clustermesh-apiserver caches in KVStoreMesh mode (Cilium's
   * cilium-kvstoremesh), same format; the agents' remotes Secret then points at the local etcd.
   */
  kvstoremesh: "clustermesh-kvstoremesh",
  /** Service through which other clusters reach this cluster's clustermesh-apiserver etcd. */
  service: "clustermesh-apiserver",
} as const;

export const DEFAULT_APISERVER_NODE_PORT = 32379;
export const DEFAULT_MAX_CONNECTED_CLUSTERS = 255;
/** The `<cluster>.mesh.cilium.io` names agents use for the remote etcd (the server certificate's wildcard SAN). */
export const MESH_DOMAIN = "mesh.cilium.io";

export interface MeshClusterConfig {
  clusterName: string;
  clusterId: number;
  maxConnectedClusters: number;
  tunnelProtocol: string;
  encryption: EncryptionMode;
  /** The clustermesh-apiserver caches the remotes (KVStoreMesh); agents read them from the local etcd. */
  kvstoremesh: boolean;
}

export function configMapData(config: MeshClusterConfig): Record<string, string> {
  return {
    "cluster-name": config.clusterName,
    "cluster-id": String(config.clusterId),
    "max-connected-clusters": String(config.maxConnectedClusters),
    "tunnel-protocol": config.tunnelProtocol,
    encryption: config.encryption,
    kvstoremesh: String(config.kvstoremesh),
  };
}

export function parseConfigMapData(
  data: Record<string, string> | undefined,
  source: string,
): MeshClusterConfig {
  const name = data?.["cluster-name"];
  const id = Number(data?.["cluster-id"]);
  const max = Number(data?.["max-connected-clusters"] ?? DEFAULT_MAX_CONNECTED_CLUSTERS);
  if (!name) throw new Error(`${source}: cluster-name is missing`);
  if (!Number.isInteger(id) || id < 1 || id > max) throw new Error(`${source}: cluster-id must be 1..${max}`);
  const encryption = data?.encryption ?? "none";
  if (!isEncryptionMode(encryption)) {
    throw new Error(`${source}: encryption must be one of ${ENCRYPTION_MODES.join(", ")}`);
  }
  return {
    clusterName: name,
    clusterId: id,
    maxConnectedClusters: max,
    tunnelProtocol: data?.["tunnel-protocol"] ?? "vxlan",
    encryption,
    // absent: enabled before KVStoreMesh existed, its agents connect to the remotes directly
    kvstoremesh: data?.kvstoremesh === "true",
  };
}
