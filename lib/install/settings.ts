/**
 * What `meshctl install` renders from: the cluster's mesh name and id, its encryption, how pods on
 * the host network reach the Kubernetes API, the image and how the clustermesh-apiserver is
 * exposed. checkInstallSettings() judges them before anything reaches a cluster, with the same rules
 * `meshctl clustermesh enable` applies (checkEnableFlags), so the two commands never disagree.
 */
import { isIP } from "node:net";
import {
  ENCRYPTION_MODES,
  type EncryptionMode,
  IPSEC_BACKEND_CHOICES,
  type IpsecBackendChoice,
  isEncryptionMode,
} from "../api/encryption.js";
import { DEFAULT_RELAY_MESH_NODE_PORT } from "../api/hubble.js";
import { checkEnableFlags } from "../clustermesh/enable.js";
import { DEFAULT_APISERVER_NODE_PORT, DEFAULT_MAX_CONNECTED_CLUSTERS } from "../clustermesh/resources.js";
import { UsageError } from "../usage-error.js";
import { packageVersion } from "../version.js";

export const SERVICE_TYPES = ["NodePort", "LoadBalancer", "ClusterIP"] as const;
export type ApiserverServiceType = (typeof SERVICE_TYPES)[number];

export interface InstallSettings {
  clusterName: string;
  clusterId: number;
  encryption: EncryptionMode;
  /**
   * How long the agents keep serving an unreachable remote cluster's service backends (the agent's
   * --clustermesh-backend-ttl; 0s: forever). Cilium keeps them until the remote comes back.
   */
  clustermeshBackendTtl: string;
  /** With IPsec: the agents' backend (auto: kernel XFRM where the kernel has ESP, else strongSwan's libipsec). */
  ipsecBackend: IpsecBackendChoice;
  /**
   * Where the agent and the clustermesh-apiserver (host network, no kube-proxy) reach the
   * Kubernetes API, as Cilium's k8sServiceHost/k8sServicePort. kind: `<cluster>-control-plane:6443`.
   */
  k8sServiceHost: string;
  k8sServicePort: number;
  image: string;
  apiserverServiceType: ApiserverServiceType;
  /** Only with apiserverServiceType NodePort. */
  nodePort: number;
  /**
   * The Hubble relay in the clustermesh-apiserver pod (on by default): agents serve Hubble on
   * 4244 with mutual TLS, the relay merges them and the relays of connected clusters.
   */
  hubbleRelay: boolean;
  /** NodePort of the relay's mesh Service (with apiserverServiceType NodePort). */
  hubbleRelayNodePort: number;
  /**
   * KVStoreMesh (on by default, as Cilium >= 1.16's clustermesh.apiserver.kvstoremesh.enabled):
   * the clustermesh-apiserver caches the connected clusters into its etcd and the agents read
   * every remote from there.
   */
  kvstoremesh: boolean;
}

/** The image `npm run image` and the Dockerfile build for this checkout's version. */
export function defaultImage(): string {
  return `docker.io/clustermesh/clustermesh:${packageVersion()}`;
}

export const DEFAULTS = {
  encryption: "none" as EncryptionMode,
  apiserverServiceType: "NodePort" as ApiserverServiceType,
  nodePort: DEFAULT_APISERVER_NODE_PORT,
  hubbleRelayNodePort: DEFAULT_RELAY_MESH_NODE_PORT,
};

/** A DNS-1123 host name (kind's `c1-control-plane`) or an IP address. */
const HOST_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** An image reference: [registry/]path[:tag][@digest], no spaces. */
const IMAGE = /^[a-z0-9]+([._\-/:][a-z0-9]+)*(:[\w][\w.-]{0,127})?(@sha256:[a-f0-9]{64})?$/i;

export type PartialSettings = Partial<InstallSettings> & { clusterName?: string; clusterId?: number };

/** Every problem names its flag; the first one found is thrown as a UsageError. */
export function checkInstallSettings(partial: PartialSettings): InstallSettings {
  if (partial.clusterName === undefined) throw new UsageError("--cluster-name is required");
  if (partial.clusterId === undefined) throw new UsageError("--cluster-id is required");
  // the name's form and the id's range exactly as `clustermesh enable` judges them
  checkEnableFlags({
    clusterName: partial.clusterName,
    clusterId: partial.clusterId,
    maxConnectedClusters: DEFAULT_MAX_CONNECTED_CLUSTERS,
  });
  const encryption = partial.encryption ?? DEFAULTS.encryption;
  if (!isEncryptionMode(encryption))
    throw new UsageError(`--encryption: "${encryption}" is not one of ${ENCRYPTION_MODES.join(", ")}`);
  const clustermeshBackendTtl = partial.clustermeshBackendTtl ?? "30s";
  if (!/^\d+(ms|s|m|h)$/.test(clustermeshBackendTtl))
    throw new UsageError(
      `--clustermesh-backend-ttl: "${clustermeshBackendTtl}" is not a duration such as 30s or 2m`,
    );
  const ipsecBackend = partial.ipsecBackend ?? "auto";
  if (!IPSEC_BACKEND_CHOICES.includes(ipsecBackend))
    throw new UsageError(
      `--ipsec-backend: "${ipsecBackend}" is not one of ${IPSEC_BACKEND_CHOICES.join(", ")}`,
    );
  if (ipsecBackend !== "auto" && encryption !== "ipsec")
    throw new UsageError("--ipsec-backend: only with --encryption ipsec");
  const host = partial.k8sServiceHost;
  if (host === undefined || host === "")
    throw new UsageError(
      "--k8s-service-host is required: the API server's address that nodes reach without kube-proxy (kind: <cluster>-control-plane)",
    );
  if (!isIP(host) && !HOST_NAME.test(host))
    throw new UsageError(`--k8s-service-host: "${host}" is not an IP address or a DNS name`);
  const port = partial.k8sServicePort ?? 6443;
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new UsageError(`--k8s-service-port: ${port} is not a port 1..65535`);
  const image = partial.image ?? defaultImage();
  if (!IMAGE.test(image)) throw new UsageError(`--image: "${image}" is not an image reference`);
  const serviceType = partial.apiserverServiceType ?? DEFAULTS.apiserverServiceType;
  if (!(SERVICE_TYPES as readonly string[]).includes(serviceType))
    throw new UsageError(
      `--apiserver-service-type: "${serviceType}" is not one of ${SERVICE_TYPES.join(", ")}`,
    );
  const nodePort = partial.nodePort ?? DEFAULTS.nodePort;
  if (!Number.isInteger(nodePort) || nodePort < 30000 || nodePort > 32767)
    throw new UsageError(`--node-port: ${nodePort} is not in the default NodePort range 30000..32767`);
  const relayNodePort = partial.hubbleRelayNodePort ?? DEFAULTS.hubbleRelayNodePort;
  if (!Number.isInteger(relayNodePort) || relayNodePort < 30000 || relayNodePort > 32767)
    throw new UsageError(
      `--hubble-relay-node-port: ${relayNodePort} is not in the default NodePort range 30000..32767`,
    );
  if (relayNodePort === nodePort)
    throw new UsageError(`--hubble-relay-node-port: ${relayNodePort} is already --node-port`);
  return {
    clusterName: partial.clusterName,
    clusterId: partial.clusterId,
    encryption,
    ipsecBackend,
    clustermeshBackendTtl,
    k8sServiceHost: host,
    k8sServicePort: port,
    image,
    apiserverServiceType: serviceType,
    nodePort,
    hubbleRelay: partial.hubbleRelay ?? true,
    hubbleRelayNodePort: relayNodePort,
    kvstoremesh: partial.kvstoremesh ?? true,
  };
}
