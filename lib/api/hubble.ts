/**
 * Where Hubble is served in an installed cluster and the names its certificates carry, as Cilium's
 * (https://docs.cilium.io/en/stable/observability/hubble/configuration/tls/): agents present
 * `*.<cluster>.hubble-grpc.cilium.io`, relays `*.hubble-relay.cilium.io`; a client checks the
 * name of the one it dialled, whatever address it dialled (a node IP, a NodePort).
 */

/** Agents: Hubble's observer on the node (host network), mutual TLS. */
export const HUBBLE_AGENT_PORT = 4244;
/** The relay for clients in the cluster (the `hubble-relay` Service maps port 80 to it). */
export const HUBBLE_RELAY_PORT = 4245;
/** The relay for other clusters' relays, mutual TLS (the `hubble-relay-mesh` Service). */
export const HUBBLE_RELAY_MESH_PORT = 4246;
export const DEFAULT_RELAY_MESH_NODE_PORT = 32446;

export const HubbleObjects = {
  /** kubernetes.io/tls Secret: the agents' server (and client) certificate. */
  agentCert: "hubble-server-certs",
  /** kubernetes.io/tls Secret: the relay's certificate, served and presented to agents and relays. */
  relayCert: "hubble-relay-certs",
  /** ConfigMap: <remote cluster>: <host:port of its relay's mesh listener>, written by connect. */
  relayPeers: "hubble-relay-peers",
  relayService: "hubble-relay",
  relayMeshService: "hubble-relay-mesh",
} as const;

export const agentCertDnsName = (cluster: string) => `*.${cluster}.hubble-grpc.cilium.io`;
export const RELAY_CERT_DNS_NAME = "*.hubble-relay.cilium.io";

/** The name an agent's certificate is checked for (a wildcard covers one label: dots become dashes). */
export function agentHubbleServerName(node: string, cluster: string): string {
  return `${node.replaceAll(".", "-")}.${cluster}.hubble-grpc.cilium.io`;
}

export function relayServerName(cluster: string): string {
  return `${cluster}.hubble-relay.cilium.io`;
}
