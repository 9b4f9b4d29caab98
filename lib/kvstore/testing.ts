/**
 * Test support: a real etcd on 127.0.0.1 random ports with client-cert auth, clients by CN, and
 * restart (optionally wiped) on the same ports. stop() removes everything, also after failures.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Etcd3 } from "etcd3";
import { type CertificateBundle, createCa, issueClientCert, issueServerCert } from "../../certs/authority.js";
import { bundlePaths, saveBundle } from "../../certs/store.js";
import { connectEtcd, type EtcdClientTls } from "../etcd/client.js";
import { type EtcdServer, startEtcd, stopEtcd, waitEtcdHealthy } from "../etcd/launcher.js";
import { freePort } from "../free-port.js";

export class TestEtcd {
  readonly dir = mkdtempSync(join(tmpdir(), "kvstore-test-"));
  readonly ca: CertificateBundle = createCa({ commonName: "kvstore test CA" });
  server?: EtcdServer;
  private ports: { client: number; peer: number } | undefined;
  private readonly clients: Etcd3[] = [];

  async start(): Promise<void> {
    saveBundle(join(this.dir, "pki"), "server", issueServerCert(this.ca));
    this.ports = { client: await freePort(), peer: await freePort() };
    await this.launch();
  }

  private async launch(): Promise<void> {
    this.server = startEtcd({
      name: "kvstore-test",
      listenAddress: "127.0.0.1",
      clientPort: this.ports?.client,
      peerPort: this.ports?.peer,
      dataDir: join(this.dir, "data"),
      logFile: join(this.dir, "etcd.log"),
      tlsFiles: bundlePaths(join(this.dir, "pki"), "server"),
    });
    await waitEtcdHealthy(this.server, this.tls("root"), { logFile: join(this.dir, "etcd.log") });
  }

  get url(): string {
    return this.server?.clientUrl ?? "";
  }

  tls(commonName: string): EtcdClientTls {
    const cert = issueClientCert(this.ca, { commonName });
    return { ca: this.ca.certPem, cert: cert.certPem, key: cert.keyPem };
  }

  /** A client authenticated as `commonName`; closed by stop(). */
  client(commonName = "root"): Etcd3 {
    const client = connectEtcd({ endpoints: [this.url], tls: this.tls(commonName), dialTimeoutMs: 1_000 });
    this.clients.push(client);
    return client;
  }

  /** Stops etcd (data kept unless `wipe`). */
  async halt({ wipe = false } = {}): Promise<void> {
    if (this.server) await stopEtcd(this.server, { removeData: wipe });
    this.server = undefined;
  }

  async restart({ wipe = false } = {}): Promise<void> {
    await this.halt({ wipe });
    await this.launch();
  }

  async stop(): Promise<void> {
    for (const client of this.clients) client.close();
    try {
      if (this.server) await stopEtcd(this.server);
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}
