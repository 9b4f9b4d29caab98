import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { isRunning, type ProcessRef, startDaemon, stopProcess, WaitAborted, waitFor } from "../process.js";
import { connectEtcd, type EtcdClientTls } from "./client.js";

export interface EtcdServerOptions {
  name: string;
  /** Named network namespace to run in; the root namespace when absent. */
  netns?: string;
  listenAddress: string;
  clientPort?: number;
  peerPort?: number;
  /** Should be on tmpfs: etcd 3.4 has no --unsafe-no-fsync. */
  dataDir: string;
  logFile: string;
  /** Server certificate files; clients must present a certificate signed by caFile (client-cert auth). */
  tlsFiles: { cert: string; key: string; ca: string };
  etcdBinary?: string;
}

export interface EtcdServer {
  process: ProcessRef;
  clientUrl: string;
  dataDir: string;
  /** The command line it runs with (for process records that restart it as it was). */
  argv: string[];
}

function url(scheme: string, address: string, port: number): string {
  return `${scheme}://${address.includes(":") ? `[${address}]` : address}:${port}`;
}

/**
 * `clusterToken` only counts when etcd bootstraps an empty data dir: a new token each time gives
 * a wiped etcd a new cluster id (the id is derived from name, peer URLs and token), which is how
 * watchers of a remote cluster tell a wiped etcd from a restarted one.
 */
export function etcdArgv(options: EtcdServerOptions, clusterToken: string): string[] {
  const clientUrl = url("https", options.listenAddress, options.clientPort ?? 2379);
  const peerUrl = url("http", options.listenAddress, options.peerPort ?? 2380);
  return [
    options.etcdBinary ?? "etcd",
    `--name=${options.name}`,
    `--data-dir=${options.dataDir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=${options.name}=${peerUrl}`,
    "--initial-cluster-state=new",
    `--initial-cluster-token=${clusterToken}`,
    `--cert-file=${options.tlsFiles.cert}`,
    `--key-file=${options.tlsFiles.key}`,
    `--trusted-ca-file=${options.tlsFiles.ca}`,
    "--client-cert-auth=true",
    // A single member on tmpfs: elect in ~0.3 s instead of ~1 s.
    "--heartbeat-interval=10",
    "--election-timeout=100",
    "--logger=zap",
    "--log-level=warn",
  ];
}

/** Starts etcd detached; use waitEtcdHealthy before relying on it. */
export function startEtcd(options: EtcdServerOptions): EtcdServer {
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const argv = etcdArgv(options, `${options.name}-${randomBytes(8).toString("hex")}`);
  const process = startDaemon({ argv, netns: options.netns, logFile: options.logFile });
  return {
    process,
    clientUrl: url("https", options.listenAddress, options.clientPort ?? 2379),
    dataDir: options.dataDir,
    argv,
  };
}

/** Resolves once etcd answers a status call over TLS with the given client certificate. */
export async function waitEtcdHealthy(
  server: EtcdServer,
  tls: EtcdClientTls,
  { timeoutMs = 15_000, logFile }: { timeoutMs?: number; logFile?: string } = {},
): Promise<void> {
  const client = connectEtcd({ endpoints: [server.clientUrl], tls, dialTimeoutMs: 1_000 });
  try {
    await waitFor(
      `etcd at ${server.clientUrl} to become healthy`,
      async () => {
        if (!isRunning(server.process)) {
          throw new WaitAborted(
            `etcd (PID ${server.process.pid}) exited${logFile ? `; see ${logFile}` : ""}`,
          );
        }
        await client.maintenance.status();
        return true;
      },
      { timeoutMs, intervalMs: 100 },
    );
  } finally {
    client.close();
  }
}

export async function stopEtcd(server: EtcdServer, { removeData = true } = {}): Promise<void> {
  await stopProcess(server.process);
  if (removeData) rmSync(server.dataDir, { recursive: true, force: true });
}
