import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { createCa, issueClientCert, issueServerCert } from "../../certs/authority.js";
import { bundlePaths, saveBundle } from "../../certs/store.js";
import { type EtcdServer, startEtcd, stopEtcd, waitEtcdHealthy } from "../../lib/etcd/launcher.js";
import { freePort } from "../../lib/free-port.js";
import { type ClusterKubePki, createClusterKubePki } from "../kube-apiserver/pki.js";
import { type KubeApiServer, startKubeApiServer } from "../kube-apiserver/server.js";
import { writeKubeconfig } from "../kubernetes/kubeconfig.js";

/**
 * Test support for the controllers and the kubelet: etcd + the lab API server in-process, with the
 * cluster PKI and kubeconfigs for admin, controller-manager and each kubelet. stop() removes it all.
 */

export interface LabApiOptions {
  /** Address the API server binds to (must exist in the root netns). */
  bindAddress?: string;
  nodes?: { name: string; ip: string }[];
  serviceSubnet?: string;
}

export class LabApi {
  readonly dir = mkdtempSync(join(tmpdir(), "lab-api-test-"));
  pki!: ClusterKubePki;
  etcd?: EtcdServer;
  server?: KubeApiServer;

  async start(options: LabApiOptions = {}): Promise<void> {
    const bindAddress = options.bindAddress ?? "127.0.0.1";
    const serviceSubnet = options.serviceSubnet ?? "10.96.0.0/24";
    this.pki = createClusterKubePki(join(this.dir, "pki"), {
      clusterName: "test",
      apiServerIps: [bindAddress],
      serviceSubnet,
      nodes: options.nodes ?? [],
    });
    const etcdCa = createCa({ commonName: "test etcd CA" });
    saveBundle(join(this.dir, "etcd-pki"), "server", issueServerCert(etcdCa));
    const client = issueClientCert(etcdCa, { commonName: "kube-apiserver" });
    const etcdTls = { ca: etcdCa.certPem, cert: client.certPem, key: client.keyPem };
    this.etcd = startEtcd({
      name: "test",
      listenAddress: "127.0.0.1",
      clientPort: await freePort(),
      peerPort: await freePort(),
      dataDir: join("/dev/shm", `lab-api-test-${process.pid}-${Date.now()}`),
      logFile: join(this.dir, "etcd.log"),
      tlsFiles: bundlePaths(join(this.dir, "etcd-pki"), "server"),
    });
    await waitEtcdHealthy(this.etcd, etcdTls, { logFile: join(this.dir, "etcd.log") });
    const read = (path: string) => readFileSync(path, "utf8");
    this.server = await startKubeApiServer({
      bindAddress,
      securePort: await freePort(bindAddress),
      tls: { cert: read(this.pki.apiServer.cert), key: read(this.pki.apiServer.key) },
      clientCa: read(this.pki.ca.cert),
      etcd: { endpoints: [this.etcd.clientUrl], tls: etcdTls },
      serviceClusterIpRange: serviceSubnet,
      kubeletClient: {
        cert: read(this.pki.apiServerKubeletClient.cert),
        key: read(this.pki.apiServerKubeletClient.key),
        ca: read(this.pki.ca.cert),
      },
      clusterName: "test",
    });
  }

  /** Writes a kubeconfig for one of the PKI's client certificates; returns its path. */
  kubeconfigFor(name: string, paths: { cert: string; key: string }): string {
    const path = join(this.dir, `${name}.kubeconfig`);
    writeKubeconfig(path, {
      server: this.server?.url ?? "",
      caPem: readFileSync(this.pki.ca.cert, "utf8"),
      certPem: readFileSync(paths.cert, "utf8"),
      keyPem: readFileSync(paths.key, "utf8"),
      context: "test",
      cluster: "test",
      user: name,
    });
    return path;
  }

  kubeConfig(name: string, paths: { cert: string; key: string }): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromFile(this.kubeconfigFor(name, paths));
    return kc;
  }

  async stop(): Promise<void> {
    try {
      await this.server?.close();
    } finally {
      if (this.etcd) await stopEtcd(this.etcd);
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
