#!/usr/bin/env node
/**
 * clustermesh-apiserver: one per cluster. Flags follow Cilium's where they exist.
 *   node dist/clustermesh-apiserver/main.js --cluster-name c1 --cluster-id 1 --kubeconfig f
 *     --etcd-servers https://127.0.0.1:2379 --etcd-cafile ca.crt --etcd-certfile admin.crt
 *     --etcd-keyfile admin.key --readyz-address 127.0.0.1:9880 [--max-connected-clusters 255]
 *     [--kvstoremesh --clustermesh-config DIR]   (cache the remotes in DIR into the local etcd)
 */
import { KubeConfig } from "@kubernetes/client-node";
import { Command, InvalidArgumentError } from "commander";
import { DEFAULT_LIFECYCLE } from "../lib/clustermesh/lifecycle.js";
import type { RemoteEntry } from "../lib/clustermesh/remote-entries.js";
import { MeshObjects } from "../lib/clustermesh/resources.js";
import { formatErrorChain } from "../lib/error-chain.js";
import { connectEtcd, tlsFromFiles } from "../lib/etcd/client.js";
import {
  clusterIdProblem,
  clusterNameProblem,
  type MaxConnectedClusters,
} from "../lib/kvstore/cluster-identity.js";
import { createLogger } from "../lib/log.js";
import { versionLine } from "../lib/version.js";
import { ClusterMeshApiServer } from "./apiserver.js";
import { startHealthServer } from "./health.js";
import { addHubbleRelayOptions, type HubbleRelayFlags, startHubbleRelay } from "./hubble-relay.js";
import { type ConfigDirWatch, watchConfigDir } from "./kvstoremesh/config-dir.js";
import { watchConfigSecret } from "./kvstoremesh/config-secret.js";
import { KvStoreMesh } from "./kvstoremesh/kvstoremesh.js";
import { kvstoreMeshMetricFamilies } from "./kvstoremesh/metrics.js";

const integer = (value: string) => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("not a non-negative integer");
  return Number(value);
};

function booleanFlag(value: string | boolean): boolean {
  if (value === true || value === "true") return true;
  if (value === false || value === "false" || value === "") return false;
  throw new InvalidArgumentError(`"${value}" is not true or false`);
}

function envFlag(name: string): boolean {
  const value = process.env[name] ?? "false";
  if (value !== "true" && value !== "false")
    throw new InvalidArgumentError(`${name}: "${value}" is not true or false`);
  return value === "true";
}

const program = new Command("clustermesh-apiserver")
  .version(versionLine("clustermesh-apiserver"))
  .requiredOption("--cluster-name <name>", "this cluster's name")
  .requiredOption("--cluster-id <id>", "this cluster's id (1..max-connected-clusters)", integer)
  .requiredOption("--kubeconfig <file>", "kubeconfig of this cluster's Kubernetes API")
  .requiredOption("--etcd-servers <urls>", "comma-separated etcd client URLs")
  .requiredOption("--etcd-cafile <file>", "CA of the etcd server certificate")
  .requiredOption("--etcd-certfile <file>", "client certificate (CN admin-<cluster>)")
  .requiredOption("--etcd-keyfile <file>", "client key")
  .option("--readyz-address <ip:port>", "serves /readyz, /healthz and /metrics", "127.0.0.1:9880")
  .option("--max-connected-clusters <n>", "255 or 511", integer, 255)
  .option("--remote-users <names>", "peer clusters whose agents use CN remote-<peer>", "")
  .option("--heartbeat-interval <ms>", "heartbeat write interval", integer, 60_000)
  .option("--lease-ttl <seconds>", "etcd lease TTL", integer, 15 * 60)
  .option(
    "--etcd-server-name <name>",
    "name expected in the etcd server certificate",
    "clustermesh-apiserver.cilium.io",
  )
  .option(
    "--kvstore-drift-repair <mode>",
    "how keys changed in etcd by someone else are noticed: watch, poll or off",
    (value: string) => {
      if (value !== "watch" && value !== "poll" && value !== "off")
        throw new InvalidArgumentError("must be watch, poll or off");
      return value;
    },
    "watch",
  )
  .option(
    "--kvstore-drift-poll-interval <ms>",
    "listing interval with --kvstore-drift-repair=poll",
    integer,
    2_000,
  )
  .option(
    "--kvstoremesh [enabled]",
    "KVStoreMesh: cache the remote clusters of --clustermesh-config into the local etcd (env CLUSTERMESH_APISERVER_KVSTOREMESH)",
    booleanFlag,
    envFlag("CLUSTERMESH_APISERVER_KVSTOREMESH"),
  )
  .option(
    "--clustermesh-config <dir>",
    "KVStoreMesh: directory of per-remote etcd client configs (the cilium-kvstoremesh Secret)",
    "/var/lib/cilium/clustermesh",
  )
  .option(
    "--clustermesh-config-secret <name>",
    "KVStoreMesh: read the remotes from this Secret (and the client certificate from clustermesh-apiserver-remote-cert) through the Kubernetes API instead of --clustermesh-config",
  )
  .option("--log-level <level>", "pino log level", process.env.MESH_LOG_LEVEL ?? "info");
addHubbleRelayOptions(program);

async function main(): Promise<void> {
  const opts = program.parse(process.argv).opts();
  const log = createLogger({ name: "clustermesh-apiserver", level: opts.logLevel });
  const maxConnected = opts.maxConnectedClusters as number;
  if (maxConnected !== 255 && maxConnected !== 511)
    throw new Error("--max-connected-clusters must be 255 or 511");
  const problem =
    clusterNameProblem(opts.clusterName, opts.clusterId) ??
    clusterIdProblem(opts.clusterId, maxConnected as MaxConnectedClusters);
  if (problem) throw new Error(problem);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(opts.kubeconfig);
  const etcd = connectEtcd({
    endpoints: String(opts.etcdServers).split(",").filter(Boolean),
    tls: tlsFromFiles({ ca: opts.etcdCafile, cert: opts.etcdCertfile, key: opts.etcdKeyfile }),
    serverName: opts.etcdServerName,
  });
  const mesh: KvStoreMesh | undefined = opts.kvstoremesh
    ? new KvStoreMesh({
        local: { name: opts.clusterName, id: opts.clusterId, maxConnectedClusters: maxConnected },
        settings: DEFAULT_LIFECYCLE,
        localEtcd: etcd,
        leaseTtlSeconds: opts.leaseTtl,
        driftRepair: opts.kvstoreDriftRepair,
        log: log.child({ component: "kvstoremesh" }),
      })
    : undefined;
  let configWatch: ConfigDirWatch | undefined;
  const create = () =>
    new ClusterMeshApiServer({
      clusterName: opts.clusterName,
      clusterId: opts.clusterId,
      maxConnectedClusters: maxConnected,
      kubeConfig,
      etcd,
      remotePeers: String(opts.remoteUsers).split(",").filter(Boolean),
      heartbeatIntervalMs: opts.heartbeatInterval,
      leaseTtlSeconds: opts.leaseTtl,
      driftRepair: opts.kvstoreDriftRepair,
      driftPollIntervalMs: opts.kvstoreDriftPollInterval,
      extraMetrics: mesh ? kvstoreMeshMetricFamilies(mesh, opts.clusterName) : [],
      log,
    });
  let apiserver = create();
  const health = await startHealthServer(opts.readyzAddress, {
    readiness: () => apiserver.readiness(),
    healthy: () => apiserver.health(),
    metrics: () => apiserver.metrics(),
    ...(mesh ? { clusters: () => mesh.status() } : {}),
  });
  log.info({ cluster: opts.clusterName, id: opts.clusterId, health: health.url }, "starting");
  const relay = await startHubbleRelay(opts as HubbleRelayFlags, {
    clusterName: opts.clusterName,
    kubeConfig,
    log,
  });
  if (relay) log.info({ port: relay.port, meshPort: relay.meshPort }, "hubble relay serving");
  const startKvStoreMesh = async (kvstoremesh: KvStoreMesh) => {
    // after the apiserver's start: etcd is up and its users/roles exist
    await kvstoremesh.start();
    const apply = (entries: RemoteEntry[]) => {
      log.info({ remotes: entries.map((e) => e.name) }, "kvstoremesh: remote clusters configured");
      kvstoremesh
        .setRemotes(entries)
        .catch((error) => log.warn({ err: error }, "kvstoremesh: applying the remote clusters failed"));
    };
    const unreadable = (error: Error) =>
      log.warn({ err: error }, "kvstoremesh: remote cluster configuration unreadable; keeping the last one");
    configWatch = opts.clustermeshConfigSecret
      ? watchConfigSecret(
          kubeConfig,
          { remotes: opts.clustermeshConfigSecret, clientCert: MeshObjects.remoteCert },
          opts.clusterName,
          apply,
          unreadable,
        )
      : watchConfigDir(opts.clustermeshConfig, opts.clusterName, apply, unreadable);
    log.info(
      {
        source: opts.clustermeshConfigSecret
          ? `Secret ${opts.clustermeshConfigSecret}`
          : opts.clustermeshConfig,
      },
      "kvstoremesh enabled",
    );
  };
  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    configWatch?.stop();
    await mesh?.stop();
    await apiserver.stop();
    await relay?.close();
    health.server.close();
    etcd.close();
    process.exit(0);
  };
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  // etcd may come up after us (same pod/namespace): retry the start until it works.
  for (let attempt = 1; !stopping; attempt++) {
    try {
      await apiserver.start();
      log.info("started; syncing");
      if (mesh) await startKvStoreMesh(mesh);
      return;
    } catch (error) {
      log.warn({ attempt, err: error }, "start failed; retrying");
      await apiserver.stop();
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * attempt)));
      apiserver = create();
    }
  }
}

main().catch((error) => {
  console.error(`clustermesh-apiserver: ${formatErrorChain(error)}`);
  process.exit(1);
});
