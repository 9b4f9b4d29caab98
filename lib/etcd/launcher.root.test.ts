import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createCa, issueClientCert, issueServerCert } from "../../certs/authority.js";
import { bundlePaths, saveBundle } from "../../certs/store.js";
import { freePort } from "../free-port.js";
import { isRunning } from "../process.js";
import { connectEtcd } from "./client.js";
import { type EtcdServer, startEtcd, stopEtcd, waitEtcdHealthy } from "./launcher.js";

describe("etcd launcher (root: starts the etcd binary)", () => {
  const dir = mkdtempSync(join(tmpdir(), "mesh-etcd-test-"));
  const ca = createCa();
  const admin = issueClientCert(ca, { commonName: "admin-c1" });
  let server: EtcdServer | undefined;

  before(async () => {
    saveBundle(join(dir, "pki"), "server", issueServerCert(ca));
    server = startEtcd({
      name: "c1",
      listenAddress: "127.0.0.1",
      clientPort: await freePort(),
      peerPort: await freePort(),
      dataDir: join(dir, "data"),
      logFile: join(dir, "etcd.log"),
      tlsFiles: bundlePaths(join(dir, "pki"), "server"),
    });
    await waitEtcdHealthy(server, { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem });
  });

  after(async () => {
    if (server) await stopEtcd(server);
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves a client that presents a certificate from the cluster CA", async () => {
    const client = connectEtcd({
      endpoints: [server?.clientUrl ?? ""],
      tls: { ca: ca.certPem, cert: admin.certPem, key: admin.keyPem },
    });
    try {
      await client.put("cilium/test").value("v1");
      assert.equal(await client.get("cilium/test").string(), "v1");
    } finally {
      client.close();
    }
  });

  it("refuses a client whose certificate comes from another CA", async () => {
    const stranger = createCa();
    const cert = issueClientCert(stranger, { commonName: "admin-c1" });
    const client = connectEtcd({
      endpoints: [server?.clientUrl ?? ""],
      tls: { ca: ca.certPem, cert: cert.certPem, key: cert.keyPem },
      dialTimeoutMs: 1_000,
    });
    try {
      await assert.rejects(client.get("cilium/test").string());
    } finally {
      client.close();
    }
  });

  it("stops cleanly and removes its data", async () => {
    assert.ok(server);
    await stopEtcd(server);
    assert.ok(!isRunning(server.process));
    server = undefined;
  });
});
