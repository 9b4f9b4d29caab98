/**
 * Test support: a real etcd on 127.0.0.1 random ports plus this API server, with a cluster PKI and an
 * admin kubeconfig. Everything lives in one temp dir and is removed by stop(), also after failures.
 * Only the built-in API server's own tests use it (it goes with this folder, issue 13); every
 * other test runs on the real control plane (testing/kubernetes.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import type { Etcd3 } from "etcd3";
import { createCa, issueClientCert, issueServerCert } from "../../certs/authority.js";
import { bundlePaths, saveBundle } from "../../certs/store.js";
import { connectEtcd, type EtcdClientTls } from "../../lib/etcd/client.js";
import { type EtcdServer, startEtcd, stopEtcd, waitEtcdHealthy } from "../../lib/etcd/launcher.js";
import { freePort } from "../../lib/free-port.js";
import { writeKubeconfig } from "../kubernetes/kubeconfig.js";
import { type ClusterKubePki, createClusterKubePki } from "./pki.js";
import { type KubeApiServer, type KubeApiServerOptions, startKubeApiServer } from "./server.js";

export const TEST_SERVICE_RANGE = "10.96.0.0/24";

export class TestCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "kube-apiserver-test-"));
  pki!: ClusterKubePki;
  etcd?: EtcdServer;
  etcdTls!: EtcdClientTls;
  server?: KubeApiServer;
  kubeconfigPath = join(this.dir, "admin.kubeconfig");
  private port = 0;

  async start(extra: Partial<KubeApiServerOptions> = {}): Promise<void> {
    this.pki = createClusterKubePki(join(this.dir, "pki"), {
      clusterName: "test",
      apiServerIps: ["127.0.0.1"],
      serviceSubnet: TEST_SERVICE_RANGE,
      nodes: [{ name: "node-a", ip: "127.0.0.1" }],
    });
    const etcdCa = createCa({ commonName: "test etcd CA" });
    const etcdPki = join(this.dir, "etcd-pki");
    saveBundle(etcdPki, "server", issueServerCert(etcdCa));
    const client = issueClientCert(etcdCa, { commonName: "kube-apiserver" });
    this.etcdTls = { ca: etcdCa.certPem, cert: client.certPem, key: client.keyPem };
    this.etcd = startEtcd({
      name: "test",
      listenAddress: "127.0.0.1",
      clientPort: await freePort(),
      peerPort: await freePort(),
      dataDir: join(this.dir, "etcd-data"),
      logFile: join(this.dir, "etcd.log"),
      tlsFiles: bundlePaths(etcdPki, "server"),
    });
    await waitEtcdHealthy(this.etcd, this.etcdTls, { logFile: join(this.dir, "etcd.log") });
    this.port = await freePort();
    await this.startServer(extra);
    writeKubeconfig(this.kubeconfigPath, {
      server: this.server?.url ?? "",
      caPem: readFileSync(this.pki.ca.cert, "utf8"),
      certPem: readFileSync(this.pki.admin.cert, "utf8"),
      keyPem: readFileSync(this.pki.admin.key, "utf8"),
      context: "test",
      cluster: "test",
      user: "admin",
    });
  }

  serverOptions(extra: Partial<KubeApiServerOptions> = {}): KubeApiServerOptions {
    return {
      bindAddress: "127.0.0.1",
      securePort: this.port,
      tls: {
        cert: readFileSync(this.pki.apiServer.cert, "utf8"),
        key: readFileSync(this.pki.apiServer.key, "utf8"),
      },
      clientCa: readFileSync(this.pki.ca.cert, "utf8"),
      etcd: { endpoints: [this.etcd?.clientUrl ?? ""], tls: this.etcdTls },
      serviceClusterIpRange: TEST_SERVICE_RANGE,
      kubeletClient: {
        cert: readFileSync(this.pki.apiServerKubeletClient.cert, "utf8"),
        key: readFileSync(this.pki.apiServerKubeletClient.key, "utf8"),
        ca: readFileSync(this.pki.ca.cert, "utf8"),
      },
      clusterName: "test",
      ...extra,
    };
  }

  /** (Re)starts the API server on the same port and etcd. */
  async startServer(extra: Partial<KubeApiServerOptions> = {}): Promise<void> {
    this.server = await startKubeApiServer(this.serverOptions(extra));
  }

  async stopServer(): Promise<void> {
    await this.server?.close();
    this.server = undefined;
  }

  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigPath);
    return kc;
  }

  etcdClient(): Etcd3 {
    return connectEtcd({ endpoints: [this.etcd?.clientUrl ?? ""], tls: this.etcdTls });
  }

  async stop(): Promise<void> {
    try {
      await this.stopServer();
    } finally {
      if (this.etcd) await stopEtcd(this.etcd);
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
