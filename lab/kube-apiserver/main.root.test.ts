import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import {
  isRunning,
  type ProcessRef,
  startDaemon,
  stopProcess,
  WaitAborted,
  waitFor,
} from "../../lib/process.js";
import { TestCluster } from "./test-cluster.js";

describe("kube-apiserver as a process (root: starts etcd)", () => {
  const cluster = new TestCluster();
  let daemon: ProcessRef | undefined;

  before(() => cluster.start());
  after(async () => {
    if (daemon) await stopProcess(daemon);
    await cluster.stop();
  });

  it("starts from flags, serves kubectl, and stops on SIGTERM", async () => {
    const url = new URL(cluster.server?.url ?? "");
    await cluster.stopServer();
    const etcdDir = join(cluster.dir, "etcd-client");
    writeFileSync(`${etcdDir}-ca.crt`, cluster.etcdTls.ca);
    writeFileSync(`${etcdDir}.crt`, cluster.etcdTls.cert);
    writeFileSync(`${etcdDir}.key`, cluster.etcdTls.key, { mode: 0o600 });
    const pki = cluster.pki;
    const logFile = join(cluster.dir, "kube-apiserver.log");
    daemon = startDaemon({
      argv: [
        process.execPath,
        fileURLToPath(new URL("./main.js", import.meta.url)),
        "--bind-address=127.0.0.1",
        `--secure-port=${url.port}`,
        `--tls-cert-file=${pki.apiServer.cert}`,
        `--tls-private-key-file=${pki.apiServer.key}`,
        `--client-ca-file=${pki.ca.cert}`,
        `--etcd-servers=${cluster.etcd?.clientUrl}`,
        `--etcd-cafile=${etcdDir}-ca.crt`,
        `--etcd-certfile=${etcdDir}.crt`,
        `--etcd-keyfile=${etcdDir}.key`,
        "--service-cluster-ip-range=10.96.0.0/24",
        `--kubelet-client-certificate=${pki.apiServerKubeletClient.cert}`,
        `--kubelet-client-key=${pki.apiServerKubeletClient.key}`,
        "--cluster-name=proc",
      ],
      logFile,
    });
    const ref = daemon;
    const nodes = await waitFor(
      "kubectl get ns against the process",
      () =>
        new Promise<string | undefined>((resolve, reject) => {
          if (!isRunning(ref))
            reject(new WaitAborted(`kube-apiserver exited: ${readFileSync(logFile, "utf8")}`));
          execFile(
            "kubectl",
            ["--kubeconfig", cluster.kubeconfigPath, "get", "ns", "-o", "name"],
            (error, stdout) => resolve(error ? undefined : stdout),
          );
        }),
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    assert.match(nodes, /namespace\/kube-system/);
    await stopProcess(ref, 5_000);
    assert.ok(!isRunning(ref));
    assert.match(readFileSync(logFile, "utf8"), /kube-apiserver listening/);
    daemon = undefined;
  });
});
