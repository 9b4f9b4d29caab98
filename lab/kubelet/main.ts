#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { Command } from "commander";
import { formatErrorChain } from "../../lib/error-chain.js";
import { createLogger } from "../../lib/log.js";
import { CniRuntime } from "./cni.js";
import { KubeApi } from "./kube-api.js";
import { Kubelet } from "./kubelet.js";
import { parseTaints } from "./node-status.js";
import { assertCgroupRootSafe } from "./sandbox.js";
import { KubeletServer } from "./server.js";
import { StateStore } from "./state.js";
import { hostPathOnNode, type NodeFileSystem, SHARED_NODE_PATHS } from "./volumes.js";

/** The lab's pod runner for one node; run it inside the node's netns (nsenter --net=/run/netns/<node>). */
const program = new Command()
  .name("lab-kubelet")
  .requiredOption(
    "--kubeconfig <file>",
    "kubeconfig with this node's client certificate (CN system:node:<node>)",
  )
  .requiredOption("--node-name <name>", "Node object name")
  .requiredOption("--node-ip <ips>", "InternalIP(s), comma-separated (IPv4 first for dual-stack)")
  .requiredOption("--cluster-name <name>", "cluster name (given to pods as CLUSTER_NAME)")
  .requiredOption("--cni-conf-dir <dir>", "CNI network config directory (the first file by name is used)")
  .requiredOption("--cni-bin-dir <dirs>", "CNI plugin directories, colon-separated")
  .requiredOption(
    "--netns-prefix <prefix>",
    "pod network namespaces are named <prefix><12 hex of the pod uid>",
  )
  .requiredOption("--cgroup-root <dir>", "cgroup2 directory for this node's pods (below the cgroup2 mount)")
  .requiredOption("--state-dir <dir>", "pod records and container logs")
  .option(
    "--node-root <dir>",
    "the node's own file system: hostPath volumes are below it (default: the host's)",
  )
  .option(
    "--host-path-map <path=dir,…>",
    "node paths backed by a host directory of their own (e.g. /sys/fs/bpf=<the node's bpffs dir>)",
  )
  .option("--image-store <file>", "images with layers on this node (JSON written by the lab)")
  .option(
    "--node-hosts-file <file>",
    "hosts entries host-network pods resolve besides the host's (the lab's node names, as kind's docker network DNS)",
  )
  .option("--port <port>", "HTTPS port for logs/exec", "10250")
  .option("--address <ip>", "address the HTTPS server binds to", "0.0.0.0")
  .requiredOption("--tls-cert-file <file>", "serving certificate")
  .requiredOption("--tls-private-key-file <file>", "serving key")
  .requiredOption("--client-ca-file <file>", "CA that signs the clients allowed to call logs/exec")
  .option("--cluster-dns <ips>", "kube-dns Service IP(s), comma-separated, for ClusterFirst pods")
  .option("--cluster-domain <domain>", "cluster DNS domain", "cluster.local")
  .option("--control-plane", "label node-role.kubernetes.io/control-plane and taint it NoSchedule", false)
  .option(
    "--schedulable-control-plane",
    "with --control-plane: no NoSchedule taint (kind removes it when a cluster has no workers)",
    false,
  )
  .option("--register-with-taints <taints>", "extra taints key[=value]:Effect,…")
  .option("--node-labels <labels>", "extra labels key=value,…")
  .option("--node-status-update-frequency <seconds>", "heartbeat period", "10")
  .option("--log-level <level>", "pino log level", process.env.MESH_LOG_LEVEL ?? "info");

/** "/sys/fs/bpf=/x,/sys/fs/cgroup=/y" → { "/sys/fs/bpf": "/x", … }; every entry absolute. */
function parseHostPathMap(value: string | undefined): Record<string, string> {
  const map: Record<string, string> = {};
  for (const entry of String(value ?? "")
    .split(",")
    .filter(Boolean)) {
    const [path, dir] = entry.split("=");
    if (!path?.startsWith("/") || !dir?.startsWith("/"))
      throw new Error(`--host-path-map: "${entry}" is not <absolute node path>=<absolute host dir>`);
    map[path.replace(/\/+$/, "")] = dir;
  }
  return map;
}

async function main(): Promise<void> {
  const opts = program.parse().opts();
  const log = createLogger({ name: `kubelet/${opts.nodeName}`, level: opts.logLevel });
  assertCgroupRootSafe(opts.cgroupRoot);
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(opts.kubeconfig);
  const labels = Object.fromEntries(
    String(opts.nodeLabels ?? "")
      .split(",")
      .filter(Boolean)
      .map((pair) => {
        const [key, ...value] = pair.split("=");
        return [key, value.join("=")];
      }),
  );
  const fileSystem: NodeFileSystem = {
    nodeRoot: opts.nodeRoot,
    mapped: parseHostPathMap(opts.hostPathMap),
    shared: SHARED_NODE_PATHS,
  };
  const server = new KubeletServer({
    tls: {
      cert: readFileSync(opts.tlsCertFile, "utf8"),
      key: readFileSync(opts.tlsPrivateKeyFile, "utf8"),
      ca: readFileSync(opts.clientCaFile, "utf8"),
    },
    address: opts.address,
    port: Number(opts.port),
    pods: { findPod: (namespace, name) => kubelet.findPod(namespace, name) },
    log,
  });
  const port = await server.listen();
  const kubelet: Kubelet = new Kubelet({
    identity: {
      name: opts.nodeName,
      ips: String(opts.nodeIp).split(",").filter(Boolean),
      port,
      controlPlane: Boolean(opts.controlPlane),
      schedulableControlPlane: Boolean(opts.schedulableControlPlane),
      taints: parseTaints(opts.registerWithTaints),
      labels,
    },
    clusterName: opts.clusterName,
    dns: opts.clusterDns
      ? { nameservers: String(opts.clusterDns).split(",").filter(Boolean), domain: opts.clusterDomain }
      : undefined,
    netnsPrefix: opts.netnsPrefix,
    cgroupRoot: opts.cgroupRoot,
    fileSystem,
    imageStore: opts.imageStore,
    nodeHostsFile: opts.nodeHostsFile,
    cni: new CniRuntime(
      opts.cniConfDir,
      String(opts.cniBinDir).split(":").filter(Boolean),
      undefined,
      opts.nodeRoot ? hostPathOnNode("/run", fileSystem) : undefined,
    ),
    state: new StateStore(opts.stateDir),
    api: new KubeApi(kubeConfig, opts.nodeName, log),
    log,
    heartbeatMs: Number(opts.nodeStatusUpdateFrequency) * 1000,
  });
  await kubelet.start();
  log.info({ port, stateDir: opts.stateDir, logs: join(opts.stateDir, "logs") }, "serving logs/exec");
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping: tearing down this node's pods");
    Promise.all([kubelet.stop(), server.close()])
      .catch((error) => log.error({ err: error }, "shutdown failed"))
      .finally(() => process.exit(0));
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

main().catch((error) => {
  console.error(`lab-kubelet: ${formatErrorChain(error)}`);
  process.exit(1);
});
