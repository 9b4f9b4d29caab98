/**
 * Test support: Cilium's own programs at a pinned release (built once by test/interop/build.sh into
 * ~/.cache/clustermesh/bin/), the etcd client configs they read, the checker, and a KVStoreMesh.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { issueClientCert } from "../../certs/authority.js";
import { bundlePaths, saveBundle } from "../../certs/store.js";
import { freePort } from "../../lib/free-port.js";
import type { TestEtcd } from "../../lib/kvstore/testing.js";
import {
  isRunning,
  type ProcessRef,
  startDaemon,
  stopProcess,
  WaitAborted,
  waitFor,
} from "../../lib/process.js";

/** The pinned Cilium releases (one wrapper module each under test/interop/cilium-<release>/). */
export const CILIUM_RELEASES = ["v1.16", "v1.18"] as const;
export type CiliumRelease = (typeof CILIUM_RELEASES)[number];

/** What differs between the pinned releases, as far as the interop tests are concerned. */
export interface ReleaseTraits {
  /**
   * KVStoreMesh waits for the remote's service-export canary and reports `service-exports` in its
   * `synced` status (MCS-API support in the kvstore, Cilium >= 1.17:
   * https://github.com/cilium/cilium/blob/v1.18.4/pkg/clustermesh/kvstoremesh/remote_cluster.go).
   */
  serviceExports: boolean;
  /** Release-specific `clustermesh-apiserver kvstoremesh` flags (ports come from freePort()). */
  kvstoremeshFlags(): Promise<string[]>;
}

export const RELEASE_TRAITS: Record<CiliumRelease, ReleaseTraits> = {
  // 1.16: gops is always on (hive cell pkg/gops, default port 9894, shared by every instance on the
  // host), so each KVStoreMesh gets its own port; there is no heartbeat cell for kvstoremesh.
  "v1.16": {
    serviceExports: false,
    kvstoremeshFlags: async () => [`--gops-port=${await freePort()}`],
  },
  "v1.18": {
    serviceExports: true,
    kvstoremeshFlags: async () => ["--enable-gops=false", "--enable-heartbeat=true"],
  },
};

/** The repository root, from dist/test/interop/ or test/interop/. */
const REPO_ROOT = resolve(import.meta.dirname, import.meta.dirname.includes("/dist/") ? "../../.." : "../..");

export interface CiliumBinaries {
  release: CiliumRelease;
  dir: string;
  clustermeshApiserver: string;
  checker: string;
  version: string;
}

/** Builds (first time: minutes, with progress on stderr) or finds the release's binaries. */
export function ciliumBinaries(release: CiliumRelease): CiliumBinaries {
  const script = join(REPO_ROOT, "test/interop/build.sh");
  const result = spawnSync("bash", [script, release], {
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
  if (result.status !== 0)
    throw new Error(`${script} ${release} failed (exit ${result.status}); see its output above`);
  const line = result.stdout.trim().split("\n").pop() ?? "";
  const dir = line.split(" ")[1] ?? "";
  const binaries = {
    release,
    dir,
    clustermeshApiserver: join(dir, "clustermesh-apiserver"),
    checker: join(dir, "cilium-interop-checker"),
    version: "",
  };
  for (const file of [binaries.clustermeshApiserver, binaries.checker]) {
    if (!existsSync(file)) throw new Error(`${script} printed "${line}" but ${file} does not exist`);
  }
  binaries.version = execFileSync(binaries.checker, ["version"], { encoding: "utf8" }).trim();
  return binaries;
}

export interface EtcdClientFiles {
  endpoint: string;
  ca: string;
  cert: string;
  key: string;
}

/** Certificate files for user `user` (the certificate's CN) of a test etcd, and its endpoint. */
export function etcdClientFiles(etcd: TestEtcd, user: string): EtcdClientFiles {
  const dir = join(etcd.dir, "client-pki");
  saveBundle(dir, user, issueClientCert(etcd.ca, { commonName: user }));
  const paths = bundlePaths(dir, user);
  return { endpoint: etcd.url, ca: paths.ca, cert: paths.cert, key: paths.key };
}

/** An etcd client config in the YAML format Cilium reads (go.etcd.io/etcd/client/v3/yaml). */
export function writeEtcdClientConfig(path: string, files: EtcdClientFiles): string {
  writeFileSync(
    path,
    [
      "endpoints:",
      `- ${files.endpoint}`,
      `trusted-ca-file: ${files.ca}`,
      `cert-file: ${files.cert}`,
      `key-file: ${files.key}`,
      "",
    ].join("\n"),
  );
  return path;
}

export interface CheckerVerdict {
  key: string;
  kind: string;
  verdict: "accepted" | "rejected" | "ignored";
  reason?: string;
  /** Cilium's own encoding of the decoded node/service/ipcache value. */
  canonical?: string;
}

export interface CheckerReport {
  cilium: string;
  cluster: string;
  clusterConfig?: { id?: number; capabilities?: Record<string, unknown> };
  clusterConfigError?: string;
  hasClusterConfigKey: boolean;
  keys: CheckerVerdict[];
  counts: Record<string, Record<string, number>>;
  canaries?: { key: string; present: boolean; requiredBy: string[] }[];
  missingCanaries: string[];
  rejected: number;
}

/** Judges every key under `prefix` of the etcd in `etcdConfig` with Cilium's code. */
export function runChecker(
  binaries: CiliumBinaries,
  options: { etcdConfig: string; clusterName: string; prefix?: string },
): CheckerReport {
  const output = execFileSync(
    binaries.checker,
    [
      "check",
      `--etcd-config=${options.etcdConfig}`,
      `--cluster-name=${options.clusterName}`,
      `--prefix=${options.prefix ?? "cilium/"}`,
    ],
    { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
  );
  return JSON.parse(output) as CheckerReport;
}

/** Judges (key, value) pairs without etcd: one verdict per input, in order. */
export function checkerDecode(
  binaries: CiliumBinaries,
  remote: { name: string; id: number },
  entries: readonly { key: string; value: string }[],
): CheckerVerdict[] {
  const output = execFileSync(
    binaries.checker,
    ["decode", `--cluster-name=${remote.name}`, `--cluster-id=${remote.id}`],
    { input: entries.map((e) => JSON.stringify(e)).join("\n"), encoding: "utf8" },
  );
  return output
    .trim()
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => JSON.parse(line) as CheckerVerdict);
}

/** One remote cluster as Cilium's REST API (/v1/cluster) reports it. */
export interface CiliumRemoteClusterStatus {
  name: string;
  ready: boolean;
  connected: boolean;
  status?: string;
  "num-nodes"?: number;
  "num-shared-services"?: number;
  "num-identities"?: number;
  "num-endpoints"?: number;
  "num-service-exports"?: number;
  synced?: Record<string, boolean>;
  config?: Record<string, unknown>;
}

/**
 * Cilium's KVStoreMesh (`clustermesh-apiserver kvstoremesh`): caches the remotes listed in its
 * clustermesh config dir into its own local etcd, like it runs beside Cilium's apiserver.
 */
export class KvStoreMesh {
  process?: ProcessRef;
  apiUrl = "";
  readonly logFile: string;
  readonly configDir: string;

  constructor(
    private readonly binaries: CiliumBinaries,
    private readonly options: {
      dir: string;
      clusterName: string;
      clusterId: number;
      localEtcdConfig: string;
    },
  ) {
    this.logFile = join(options.dir, "kvstoremesh.log");
    this.configDir = join(options.dir, "clustermesh-config");
    mkdirSync(this.configDir, { recursive: true });
  }

  /** Adds a remote: a file named after the cluster holding its etcd client config. */
  addRemote(name: string, files: EtcdClientFiles): void {
    writeEtcdClientConfig(join(this.configDir, name), files);
  }

  async start(): Promise<void> {
    const api = `127.0.0.1:${await freePort()}`;
    this.apiUrl = `http://${api}`;
    this.process = startDaemon({
      argv: [
        this.binaries.clustermeshApiserver,
        "kvstoremesh",
        `--cluster-name=${this.options.clusterName}`,
        `--cluster-id=${this.options.clusterId}`,
        `--clustermesh-config=${this.configDir}`,
        `--kvstore-opt=etcd.config=${this.options.localEtcdConfig}`,
        `--api-serve-addr=${api}`,
        `--health-port=${await freePort()}`,
        "--prometheus-serve-addr=",
        ...(await RELEASE_TRAITS[this.binaries.release].kvstoremeshFlags()),
      ],
      logFile: this.logFile,
    });
  }

  /** GET /v1/cluster (what `kvstoremesh-dbg status` shows). */
  async remotes(): Promise<CiliumRemoteClusterStatus[]> {
    const ref = this.process;
    if (ref && !isRunning(ref))
      throw new WaitAborted(`kvstoremesh exited; see ${this.logFile}\n${this.logTail()}`);
    const response = await fetch(`${this.apiUrl}/v1/cluster`);
    if (!response.ok) throw new Error(`kvstoremesh API: ${response.status} ${await response.text()}`);
    return (await response.json()) as CiliumRemoteClusterStatus[];
  }

  async waitFor(
    what: string,
    predicate: (remote: CiliumRemoteClusterStatus) => boolean,
    remoteName: string,
    timeoutMs = 60_000,
  ): Promise<CiliumRemoteClusterStatus> {
    let last: CiliumRemoteClusterStatus | undefined;
    try {
      return await waitFor(
        `kvstoremesh: ${what}`,
        async () => {
          last = (await this.remotes()).find((r) => r.name === remoteName);
          return last && predicate(last) ? last : undefined;
        },
        { timeoutMs, intervalMs: 200 },
      );
    } catch (error) {
      throw new Error(
        `${(error as Error).message}\nlast status: ${JSON.stringify(last)}\n--- ${this.logFile} ---\n${this.logTail()}`,
        { cause: error },
      );
    }
  }

  logTail(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, "utf8").slice(-4000) : "(no log)";
  }

  async stop(): Promise<void> {
    if (this.process) await stopProcess(this.process);
    this.process = undefined;
  }
}
