/**
 * How a client outside the cluster (meshctl observe) reaches a cluster's Hubble relay: through the
 * relay's mesh Service (NodePort by default) with mutual TLS, using the relay's certificate read
 * from the cluster with the caller's own Kubernetes credentials (whoever may read Secrets in the
 * mesh namespace may read flows). The relay answers such a client with every node of every
 * connected cluster. Used instead of a port-forward: the lab's kubelet serves port-forwarding over
 * SPDY only, and @kubernetes/client-node forwards over WebSocket.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { HubbleObjects, relayServerName } from "../api/hubble.js";
import { readRelayMeshEndpoint } from "../clustermesh/relay-peers.js";
import { MeshObjects, parseConfigMapData } from "../clustermesh/resources.js";
import { coreApi, decodeSecretData, readConfigMap, readSecret } from "../k8s/client.js";
import type { ClientTls } from "./client.js";

export class RelayAccessError extends Error {}

export async function relayAccess(
  kc: KubeConfig,
  context: string,
): Promise<{ clusterName: string; target: string; tls: ClientTls }> {
  const core = coreApi(kc);
  const where = `context ${context}`;
  let configMap: Awaited<ReturnType<typeof readConfigMap>>;
  try {
    configMap = await readConfigMap(core, MeshObjects.config);
  } catch (error) {
    throw new RelayAccessError(`${where}: cannot reach the Kubernetes API: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!configMap)
    throw new RelayAccessError(
      `${where}: ConfigMap kube-system/${MeshObjects.config} not found (meshctl install)`,
    );
  const { clusterName } = parseConfigMapData(configMap.data, `${where}: ConfigMap ${MeshObjects.config}`);
  const target = await readRelayMeshEndpoint(core);
  if (!target)
    throw new RelayAccessError(
      `${where}: Service kube-system/${HubbleObjects.relayMeshService} has no address (installed with --no-hubble-relay?)`,
    );
  const secret = await readSecret(core, HubbleObjects.relayCert);
  const [ca, cert, key] = ["ca.crt", "tls.crt", "tls.key"].map((field) => decodeSecretData(secret, field));
  if (!ca || !cert || !key)
    throw new RelayAccessError(
      `${where}: Secret kube-system/${HubbleObjects.relayCert} is missing or incomplete`,
    );
  return {
    clusterName,
    target,
    tls: {
      ca: Buffer.from(ca),
      cert: Buffer.from(cert),
      key: Buffer.from(key),
      serverName: relayServerName(clusterName),
    },
  };
}
