/**
 * The relay's peers from what it watches: every Node's agent (at its InternalIP), and the relays of
 * connected clusters from the ConfigMap `meshctl clustermesh connect` writes. Pure: the informers'
 * current lists in, peers out; asked again on every request, so a Node that goes away is dropped
 * and a new one is merged without a restart.
 */
import { isIP } from "node:net";
import type { V1Node } from "@kubernetes/client-node";
import { clusterNameProblem } from "../lib/clustermesh/cluster-name.js";
import type { RelayPeer } from "../lib/hubble/relay.js";

interface Tls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

const hostPort = (host: string, port: number) => (isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`);

export function nodePeers(
  nodes: readonly V1Node[],
  options: {
    clusterName: string;
    agentPort: number;
    tls?: Tls;
    serverName: (node: string, cluster: string) => string;
  },
): RelayPeer[] {
  const peers: RelayPeer[] = [];
  for (const node of nodes) {
    const name = node.metadata?.name;
    const address = node.status?.addresses?.find((entry) => entry.type === "InternalIP")?.address;
    if (!name || !address) continue;
    peers.push({
      name: options.clusterName ? `${options.clusterName}/${name}` : name,
      kind: "node",
      target: hostPort(address, options.agentPort),
      ...(options.tls
        ? { tls: { ...options.tls, serverName: options.serverName(name, options.clusterName) } }
        : {}),
    });
  }
  return peers.sort((a, b) => a.name.localeCompare(b.name));
}

const HOST_PORT = /^(\[[0-9a-fA-F:]+\]|[0-9.]+|[a-z0-9]([-a-z0-9.]*[a-z0-9])?):(\d{1,5})$/;

/** data: <cluster>: <host:port>; a bad entry is reported (naming the key) and skipped. */
export function relayPeers(
  data: Record<string, string>,
  options: {
    tls?: Tls;
    serverName: (cluster: string) => string;
    onInvalid: (cluster: string, problem: string) => void;
  },
): RelayPeer[] {
  const peers: RelayPeer[] = [];
  for (const [cluster, value] of Object.entries(data).sort(([a], [b]) => a.localeCompare(b))) {
    const problem = clusterNameProblem(cluster);
    if (problem) {
      options.onInvalid(cluster, `key: ${problem}`);
      continue;
    }
    const target = value.trim();
    const match = HOST_PORT.exec(target);
    if (!match || Number(match[3]) < 1 || Number(match[3]) > 65535) {
      options.onInvalid(cluster, `"${target}" is not host:port`);
      continue;
    }
    if (!options.tls) {
      options.onInvalid(
        cluster,
        "another cluster's relay is reached only with mutual TLS (--hubble-relay-tls-*)",
      );
      continue;
    }
    peers.push({
      name: `${cluster}/relay`,
      kind: "relay",
      target,
      tls: { ...options.tls, serverName: options.serverName(cluster) },
    });
  }
  return peers;
}
