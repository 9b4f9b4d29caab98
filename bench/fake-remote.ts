/**
 * A large fake remote cluster for the lab benches: its own etcd on the lab bridge, filled straight
 * with lib/kvstore's encoders (nodes, identities, ipcache entries, global services, cluster config,
 * heartbeat, sync canaries) — what a clustermesh-apiserver of that size would publish — and the
 * entry that adds it to a cluster's remotes Secret.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { CoreV1Api } from "@kubernetes/client-node";
import { issueClientCert, issueServerCert } from "../certs/authority.js";
import { loadBundle, saveBundle } from "../certs/store.js";
import type { LabJournal } from "../lab/state.js";
import { COMMON_CLIENT, renderRemoteClusterConfig } from "../lib/clustermesh/remote-config.js";
import { MeshObjects } from "../lib/clustermesh/resources.js";
import { connectEtcd } from "../lib/etcd/client.js";
import { type EtcdServer, startEtcd, stopEtcd, waitEtcdHealthy } from "../lib/etcd/launcher.js";
import { freePort } from "../lib/free-port.js";
import { CANARY_NAMES, HEARTBEAT_KEY, keys } from "../lib/kvstore/paths.js";
import { encodeClusterConfig, ownClusterConfig } from "../lib/kvstore/values/cluster-config.js";
import { encodeIpIdentityPair } from "../lib/kvstore/values/ipcache.js";
import { emptyNode, encodeNode } from "../lib/kvstore/values/node.js";
import { encodeService } from "../lib/kvstore/values/service.js";
import { rfc3339 } from "../lib/kvstore/values/timestamp.js";

export interface FakeRemoteSize {
  services: number;
  backends: number;
  endpoints: number;
  nodes: number;
  identities: number;
}

export interface FakeRemote {
  name: string;
  id: number;
  clientUrl: string;
  /** Keys written, and how long writing them took. */
  keys: number;
  writeSeconds: number;
  stop(): Promise<void>;
}

export function ipv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join(".");
}

const toNumber = (ip: string) => ip.split(".").reduce((a, o) => a * 256 + Number(o), 0);

/**
 * Starts the fake remote's etcd on the lab bridge and writes its state. Its nodes sit on the bridge
 * (.150 and up: no lab node there), its pods in 100.64.0.0/10 (a /22 per node, nothing routes
 * there), its services' frontends in 10.250.0.0/16.
 */
export async function startFakeRemote(
  journal: LabJournal,
  cluster: { name: string; id: number },
  size: FakeRemoteSize,
  say: (line: string) => void,
): Promise<FakeRemote> {
  const bridgeIp = journal.snapshot.plan.bridge.address.split("/")[0];
  const dir = journal.path(`bench-${cluster.name}`);
  mkdirSync(dir, { recursive: true });
  const ca = loadBundle(journal.path("pki"), "ca");
  saveBundle(dir, "server", issueServerCert(ca, { ipAddresses: [bridgeIp] }));
  const rootCert = issueClientCert(ca, { commonName: "root" });
  const tls = { ca: ca.certPem, cert: rootCert.certPem, key: rootCert.keyPem };
  const ports = { client: await freePort(), peer: await freePort() };
  const server: EtcdServer = startEtcd({
    name: cluster.name,
    listenAddress: bridgeIp,
    clientPort: ports.client,
    peerPort: ports.peer,
    dataDir: join("/dev/shm", `clustermesh-bench-${journal.snapshot.plan.name}-${cluster.name}`),
    logFile: join(dir, "etcd.log"),
    tlsFiles: { cert: join(dir, "server.crt"), key: join(dir, "server.key"), ca: join(dir, "ca.crt") },
  });
  const stop = async () => {
    await stopEtcd(server, { removeData: true });
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitEtcdHealthy(server, tls, { logFile: join(dir, "etcd.log") });
    const etcd = connectEtcd({ endpoints: [server.clientUrl], tls });
    try {
      say(
        `writing ${size.services} services × ${size.backends} backends, ${size.endpoints} endpoints, ${size.nodes} nodes into ${cluster.name}'s etcd …`,
      );
      const started = performance.now();
      const puts = fakeRemoteKeys(cluster, size, toNumber(bridgeIp) - 1);
      for (let i = 0; i < puts.length; i += 500) {
        await Promise.all(puts.slice(i, i + 500).map(([key, value]) => etcd.put(key).value(value).exec()));
      }
      await etcd
        .put(keys.clusterConfig(cluster.name))
        .value(encodeClusterConfig(ownClusterConfig(cluster.id, 255)))
        .exec();
      await etcd.put(HEARTBEAT_KEY).value(rfc3339()).exec();
      for (const name of Object.values(CANARY_NAMES))
        await etcd.put(keys.canary(cluster.name, name)).value(rfc3339()).exec();
      return {
        ...cluster,
        clientUrl: server.clientUrl,
        keys: puts.length,
        writeSeconds: (performance.now() - started) / 1000,
        stop,
      };
    } finally {
      etcd.close();
    }
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The fake remote's keys and values. Pure. `bridgeBase`: the bridge network's address. */
export function fakeRemoteKeys(
  cluster: { name: string; id: number },
  size: FakeRemoteSize,
  bridgeBase: number,
): [string, string][] {
  const puts: [string, string][] = [];
  const podBase = (100 << 24) + (64 << 16);
  const perNode = 1024;
  for (let n = 0; n < size.nodes; n++) {
    const node = {
      ...emptyNode(`node-${n}`, cluster.name, cluster.id),
      IPAddresses: [{ Type: "InternalIP" as const, IP: ipv4(bridgeBase + 150 + n) }],
      IPv4AllocCIDR: `${ipv4(podBase + n * perNode)}/22`,
    };
    puts.push([keys.node(cluster.name, node.Name), encodeNode(node)]);
  }
  const firstIdentity = cluster.id * 65536 + 1;
  for (let i = 0; i < size.identities; i++) {
    puts.push([
      keys.identity(firstIdentity + i),
      `k8s:app=app-${i};k8s:io.cilium.k8s.policy.cluster=${cluster.name};k8s:io.kubernetes.pod.namespace=ns-${i % 100};`,
    ]);
  }
  const endpointIp = (i: number) => ipv4(podBase + Math.floor(i / 1000) * perNode + (i % 1000) + 1);
  for (let i = 0; i < size.endpoints; i++) {
    const node = Math.floor(i / 1000) % size.nodes;
    puts.push([
      keys.ip(endpointIp(i)),
      encodeIpIdentityPair({
        IP: endpointIp(i),
        prefixLength: null,
        HostIP: ipv4(bridgeBase + 150 + node),
        ID: firstIdentity + (i % size.identities),
        Key: 0,
        Metadata: "",
      }),
    ]);
  }
  for (let s = 0; s < size.services; s++) {
    const backends = Object.fromEntries(
      Array.from({ length: size.backends }, (_, b) => [
        endpointIp((s * size.backends + b) % size.endpoints),
        { http: { Protocol: "TCP" as const, Port: 8080 } },
      ]),
    );
    puts.push([
      keys.service(cluster.name, `ns-${s % 100}`, `svc-${s}`),
      encodeService({
        cluster: cluster.name,
        namespace: `ns-${s % 100}`,
        name: `svc-${s}`,
        frontends: { [ipv4((10 << 24) + (250 << 16) + s)]: { http: { Protocol: "TCP", Port: 80 } } },
        backends,
        labels: {},
        selector: { app: `svc-${s}` },
        includeExternal: true,
        shared: true,
        clusterID: cluster.id,
      }),
    ]);
  }
  return puts;
}

/** The fake remote's entry of a remotes Secret, base64 (the agents connect with the common client certificate). */
export function fakeRemoteSecretValue(remote: FakeRemote): string {
  return Buffer.from(
    renderRemoteClusterConfig({
      name: remote.name,
      endpoints: [remote.clientUrl],
      trustedCaFile: COMMON_CLIENT.ca,
      certFile: COMMON_CLIENT.cert,
      keyFile: COMMON_CLIENT.key,
    }),
  ).toString("base64");
}

/** Adds the fake remote to a cluster's remotes Secret. */
export async function addToRemotesSecret(core: CoreV1Api, remote: FakeRemote): Promise<void> {
  const secret = await core.readNamespacedSecret({ name: MeshObjects.remotes, namespace: "kube-system" });
  await core.replaceNamespacedSecret({
    name: MeshObjects.remotes,
    namespace: "kube-system",
    body: {
      ...secret,
      data: { ...(secret.data ?? {}), [remote.name]: fakeRemoteSecretValue(remote) },
    },
  });
}
