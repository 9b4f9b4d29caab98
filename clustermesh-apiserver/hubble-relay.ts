/**
 * The clustermesh-apiserver's Hubble relay (lib/hubble/relay.ts): one per cluster, merging the
 * observers of the cluster's agents and, over mutual TLS, the relays of connected clusters.
 *   --hubble-relay-address :4245               serve here (off when absent); mTLS with the TLS files
 *                                              unless --hubble-relay-disable-server-tls
 *   --hubble-relay-mesh-address :4246          serve this cluster's nodes to other clusters' relays (mTLS)
 *   --hubble-relay-peer <name>=<host:port|unix:/path>   a static peer (repeatable)
 *   --hubble-relay-discover-nodes              every Node's agent at <InternalIP>:<agent port> (watch)
 *   --hubble-relay-peers-configmap <name>      other clusters' relays: data <cluster>: <host:port>,
 *                                              written by `meshctl clustermesh connect` (watch)
 *   --hubble-relay-tls-ca F --hubble-relay-tls-cert F --hubble-relay-tls-key F
 * The relay's certificate is also its client certificate towards agents and other relays. A peer
 * that is down is named in ServerStatus and GetNodes.
 */
import { readFileSync } from "node:fs";
import type { KubeConfig, V1ConfigMap, V1Node } from "@kubernetes/client-node";
import { type Command, InvalidArgumentError } from "commander";
import { agentHubbleServerName, relayServerName } from "../lib/api/hubble.js";
import { MESH_NAMESPACE } from "../lib/api/rbac.js";
import { HubbleRelay, type RelayPeer } from "../lib/hubble/relay.js";
import { coreApi } from "../lib/k8s/client.js";
import { type Informer, startInformer } from "../lib/k8s/informer.js";
import type { Logger } from "../lib/log.js";
import { packageVersion } from "../lib/version.js";
import { nodePeers, relayPeers } from "./hubble-relay-peers.js";

const collect = (value: string, previous: string[] = []) => {
  if (!/^[^=]+=.+$/.test(value)) throw new InvalidArgumentError("must be <name>=<host:port or unix:/path>");
  return [...previous, value];
};

const port = (value: string) => {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 65535)
    throw new InvalidArgumentError("must be a port 1..65535");
  return parsed;
};

export function addHubbleRelayOptions(program: Command): Command {
  return program
    .option("--hubble-relay-address <host:port>", "serve a Hubble relay here (off when absent)")
    .option(
      "--hubble-relay-disable-server-tls",
      "serve --hubble-relay-address without TLS (in-cluster clients)",
    )
    .option(
      "--hubble-relay-mesh-address <host:port>",
      "serve this cluster's nodes to other clusters' relays (mTLS)",
    )
    .option("--hubble-relay-peer <name=address>", "a Hubble server to merge (repeatable)", collect, [])
    .option("--hubble-relay-discover-nodes", "merge the agent of every Node (watched)")
    .option(
      "--hubble-relay-agent-port <port>",
      "where agents serve Hubble (with --hubble-relay-discover-nodes)",
      port,
      4244,
    )
    .option(
      "--hubble-relay-peers-configmap <name>",
      "ConfigMap (kube-system) of other clusters' relays: <cluster>: <host:port>",
    )
    .option("--hubble-relay-tls-ca <file>", "CA for the relay's mutual TLS (server and TCP peers)")
    .option("--hubble-relay-tls-cert <file>", "the relay's certificate")
    .option("--hubble-relay-tls-key <file>", "the relay's key");
}

export interface HubbleRelayFlags {
  hubbleRelayAddress?: string;
  hubbleRelayDisableServerTls?: boolean;
  hubbleRelayMeshAddress?: string;
  hubbleRelayPeer: string[];
  hubbleRelayDiscoverNodes?: boolean;
  hubbleRelayAgentPort?: number;
  hubbleRelayPeersConfigmap?: string;
  hubbleRelayTlsCa?: string;
  hubbleRelayTlsCert?: string;
  hubbleRelayTlsKey?: string;
}

export interface RelayContext {
  clusterName: string;
  kubeConfig?: KubeConfig;
  log?: Logger;
}

export interface RunningRelay {
  relay: HubbleRelay;
  port: number;
  meshPort: number;
  close(): Promise<void>;
}

export async function startHubbleRelay(
  flags: HubbleRelayFlags,
  context: RelayContext = { clusterName: "" },
): Promise<RunningRelay | undefined> {
  if (!flags.hubbleRelayAddress) return undefined;
  const files = [flags.hubbleRelayTlsCa, flags.hubbleRelayTlsCert, flags.hubbleRelayTlsKey];
  if (files.some(Boolean) && !files.every(Boolean))
    throw new Error("--hubble-relay-tls-ca, --hubble-relay-tls-cert and --hubble-relay-tls-key go together");
  const tls = files.every(Boolean)
    ? {
        ca: readFileSync(flags.hubbleRelayTlsCa as string),
        cert: readFileSync(flags.hubbleRelayTlsCert as string),
        key: readFileSync(flags.hubbleRelayTlsKey as string),
      }
    : undefined;
  if (flags.hubbleRelayMeshAddress && !tls)
    throw new Error("--hubble-relay-mesh-address needs the relay's certificate (--hubble-relay-tls-*)");
  const watching = flags.hubbleRelayDiscoverNodes || flags.hubbleRelayPeersConfigmap;
  if (watching && (!context.kubeConfig || !context.log))
    throw new Error("--hubble-relay-discover-nodes and --hubble-relay-peers-configmap need --kubeconfig");
  const staticPeers: RelayPeer[] = flags.hubbleRelayPeer.map((entry) => {
    const at = entry.indexOf("=");
    const target = entry.slice(at + 1);
    return {
      name: entry.slice(0, at),
      target,
      ...(tls && !target.startsWith("unix:") ? { tls: { ca: tls.ca, cert: tls.cert, key: tls.key } } : {}),
    };
  });
  const informers: Informer<V1Node | V1ConfigMap>[] = [];
  if (context.kubeConfig && context.log) {
    const core = coreApi(context.kubeConfig);
    if (flags.hubbleRelayDiscoverNodes)
      informers.push(
        startInformer<V1Node>({
          name: "hubble-relay-nodes",
          kubeConfig: context.kubeConfig,
          path: "/api/v1/nodes",
          list: () => core.listNode(),
          log: context.log,
        }),
      );
    const configMap = flags.hubbleRelayPeersConfigmap;
    if (configMap)
      informers.push(
        startInformer<V1ConfigMap>({
          name: "hubble-relay-peers",
          kubeConfig: context.kubeConfig,
          path: `/api/v1/namespaces/${MESH_NAMESPACE}/configmaps`,
          // one object: RBAC grants it by name (a list with this selector is authorized as a get)
          fieldSelector: `metadata.name=${configMap}`,
          list: () =>
            core.listNamespacedConfigMap({
              namespace: MESH_NAMESPACE,
              fieldSelector: `metadata.name=${configMap}`,
            }),
          log: context.log,
        }),
      );
  }
  const [nodes, peersMap] = [
    flags.hubbleRelayDiscoverNodes ? (informers[0] as Informer<V1Node>) : undefined,
    flags.hubbleRelayPeersConfigmap ? (informers.at(-1) as Informer<V1ConfigMap>) : undefined,
  ];
  const peers = (): RelayPeer[] => [
    ...staticPeers,
    ...(nodes
      ? nodePeers(nodes.list(), {
          clusterName: context.clusterName,
          agentPort: flags.hubbleRelayAgentPort ?? 4244,
          tls,
          serverName: agentHubbleServerName,
        })
      : []),
    ...(peersMap
      ? relayPeers(peersMap.list()[0]?.data ?? {}, {
          tls,
          serverName: relayServerName,
          onInvalid: (cluster, problem) =>
            context.log?.warn({ cluster, problem }, "hubble relay peer ignored"),
        })
      : []),
  ];
  try {
    const relay = await HubbleRelay.start({
      listenAddress: flags.hubbleRelayAddress,
      version: packageVersion(),
      tls: flags.hubbleRelayDisableServerTls ? undefined : tls,
      ...(flags.hubbleRelayMeshAddress && tls
        ? { mesh: { listenAddress: flags.hubbleRelayMeshAddress, tls } }
        : {}),
      peers,
    });
    return {
      relay,
      port: relay.port,
      meshPort: relay.meshPort,
      close: async () => {
        await Promise.all(informers.map((informer) => informer.stop()));
        await relay.close();
      },
    };
  } catch (error) {
    await Promise.all(informers.map((informer) => informer.stop()));
    throw error;
  }
}
