/**
 * Test support: Cilium's own clustermesh-apiserver (`clustermesh-apiserver clustermesh`, pinned
 * release) publishing a cluster from its Kubernetes API server into a clustermesh etcd, and the
 * Cilium CRDs it waits for, vendored from Cilium's repository at the release's tag.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { freePort } from "../../lib/free-port.js";
import {
  isRunning,
  type ProcessRef,
  startDaemon,
  stopProcess,
  WaitAborted,
  waitFor,
} from "../../lib/process.js";
import type { CiliumBinaries, CiliumRelease } from "./cilium.js";

const REPO_ROOT = resolve(import.meta.dirname, import.meta.dirname.includes("/dist/") ? "../../.." : "../..");

/**
 * The CRD files (test/interop/cilium-<release>/crds/) the release's clustermesh-apiserver waits
 * for before it lists anything (`synced.ClusterMeshAPIServerResourceNames`: CiliumNode,
 * CiliumIdentity, CiliumEndpoint; 1.16 also CiliumExternalWorkload):
 * https://github.com/cilium/cilium/blob/v1.18.4/pkg/k8s/synced/crd.go#L106
 * https://github.com/cilium/cilium/blob/v1.16.17/pkg/k8s/synced/crd.go#L92
 */
export function ciliumCrdFiles(release: CiliumRelease): string[] {
  const dir = join(REPO_ROOT, "test/interop", `cilium-${release}`, "crds");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => join(dir, f));
}

/** Release-specific flags of `clustermesh-apiserver clustermesh` (gops: its own port or off). */
async function releaseFlags(release: CiliumRelease): Promise<string[]> {
  // 1.16: gops cannot be disabled (pkg/gops cell without an enable flag); external workloads are on
  // by default and would make the apiserver manage CiliumExternalWorkload objects we do not test.
  if (release === "v1.16") return [`--gops-port=${await freePort()}`, "--enable-external-workloads=false"];
  return ["--enable-gops=false"];
}

/** Cilium's clustermesh-apiserver for one cluster, run on the host (it reaches the lab's node IPs). */
export class CiliumClusterMeshApiserver {
  process?: ProcessRef;
  readonly logFile: string;
  private healthUrl = "";

  constructor(
    private readonly binaries: CiliumBinaries,
    private readonly options: {
      dir: string;
      clusterName: string;
      clusterId: number;
      /** Admin kubeconfig of the cluster's Kubernetes API server. */
      kubeconfig: string;
      /** Cilium's etcd client YAML for the clustermesh etcd (writeEtcdClientConfig). */
      etcdConfig: string;
    },
  ) {
    this.logFile = join(options.dir, `cilium-clustermesh-apiserver-${options.clusterName}.log`);
  }

  async start(): Promise<void> {
    const healthPort = await freePort();
    this.healthUrl = `http://127.0.0.1:${healthPort}`;
    this.process = startDaemon({
      argv: [
        this.binaries.clustermeshApiserver,
        "clustermesh",
        `--cluster-name=${this.options.clusterName}`,
        `--cluster-id=${this.options.clusterId}`,
        `--k8s-kubeconfig-path=${this.options.kubeconfig}`,
        `--kvstore-opt=etcd.config=${this.options.etcdConfig}`,
        `--health-port=${healthPort}`,
        "--prometheus-serve-addr=",
        ...(await releaseFlags(this.binaries.release)),
      ],
      logFile: this.logFile,
    });
  }

  /** Until its /readyz answers 200 (everything synced into the kvstore). */
  async waitReady(timeoutMs = 90_000): Promise<void> {
    try {
      await waitFor(
        "Cilium's clustermesh-apiserver /readyz 200",
        async () => {
          if (this.process && !isRunning(this.process))
            throw new WaitAborted("Cilium's clustermesh-apiserver exited");
          const response = await fetch(`${this.healthUrl}/readyz`, {
            signal: AbortSignal.timeout(2_000),
            // not listening yet (refused) or slow: the wait asks again until its deadline
          }).catch(() => undefined);
          await response?.text();
          return response?.status === 200;
        },
        { timeoutMs, intervalMs: 200 },
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- ${this.logFile} ---\n${this.logTail()}`, {
        cause: error,
      });
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
