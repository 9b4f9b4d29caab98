import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createCa, isIssuedBy, issueClientCert, issueServerCert } from "./authority.js";
import { loadBundle, saveBundle } from "./store.js";
import { etcdUsers } from "./users.js";

describe("certificate authority", () => {
  const ca = createCa({ commonName: "test CA", validityDays: 30 });

  it("issues an etcd server certificate with Cilium's names and the given IPs", () => {
    const server = issueServerCert(ca, {
      ipAddresses: ["172.30.0.2"],
      dnsNames: ["cluster1.mesh.cilium.io"],
    });
    const x509 = new X509Certificate(server.certPem);
    assert.equal(x509.subject, "CN=clustermesh-apiserver.cilium.io");
    assert.ok(x509.checkHost("clustermesh-apiserver.cilium.io"));
    assert.ok(x509.checkHost("cluster2.mesh.cilium.io"), "*.mesh.cilium.io wildcard");
    assert.ok(x509.checkIP("172.30.0.2"));
    assert.ok(x509.checkIP("127.0.0.1"));
    assert.ok(x509.verify(new X509Certificate(ca.certPem).publicKey));
    assert.ok(isIssuedBy(server.certPem, ca.certPem));
  });

  it("issues client certificates whose CN is the etcd user", () => {
    for (const user of [
      etcdUsers.admin("c1"),
      etcdUsers.remote(),
      etcdUsers.remote("c2"),
      etcdUsers.local("c1"),
    ]) {
      const client = issueClientCert(ca, { commonName: user, validityDays: 10 });
      assert.equal(client.commonName, user);
      const days = (client.notAfter.getTime() - Date.now()) / 86_400_000;
      assert.ok(days > 9.9 && days <= 10, `validity ${days} days`);
    }
    const other = createCa();
    assert.ok(!isIssuedBy(issueClientCert(other, { commonName: "remote" }).certPem, ca.certPem));
  });

  it("never puts the private key into JSON", () => {
    const client = issueClientCert(ca, { commonName: "remote" });
    const json = JSON.stringify({ client });
    assert.ok(!json.includes("PRIVATE KEY"));
    assert.match(json, /"commonName":"remote"/);
  });

  it("saves and loads PEM files with a private key file only root can read", () => {
    const dir = mkdtempSync(join(tmpdir(), "mesh-certs-"));
    try {
      const client = issueClientCert(ca, { commonName: "admin-c1" });
      saveBundle(dir, "admin", client);
      assert.equal(statSync(join(dir, "admin.key")).mode & 0o777, 0o600);
      const loaded = loadBundle(dir, "admin");
      assert.equal(loaded.certPem, client.certPem);
      assert.equal(loaded.keyPem, client.keyPem);
      assert.equal(loaded.caPem, ca.certPem);
      assert.throws(() => loadBundle(dir, "missing"), /missing.crt does not exist/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects a non-positive validity", () => {
    assert.throws(
      () => issueClientCert(ca, { commonName: "x", validityDays: 0 }),
      /validityDays must be positive|positive number/,
    );
  });
});
