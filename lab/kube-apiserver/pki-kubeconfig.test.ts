import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createClusterKubePki } from "./pki.js";

describe("cluster PKI and kubeconfig", () => {
  const dir = mkdtempSync(join(tmpdir(), "kube-pki-test-"));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const pki = createClusterKubePki(join(dir, "pki"), {
    clusterName: "c1",
    apiServerIps: ["172.30.1.2"],
    serviceSubnet: "10.96.0.0/16",
    nodes: [{ name: "c1-worker", ip: "172.30.1.3" }],
  });

  it("issues the serving cert with the apiserver names and the service IP", () => {
    const cert = new X509Certificate(readFileSync(pki.apiServer.cert));
    const ca = new X509Certificate(readFileSync(pki.ca.cert));
    assert.ok(cert.verify(ca.publicKey));
    for (const ip of ["172.30.1.2", "10.96.0.1", "127.0.0.1"]) assert.ok(cert.checkIP(ip), ip);
    assert.ok(cert.checkHost("kubernetes.default.svc.cluster.local"));
    assert.equal(statSync(pki.apiServer.key).mode & 0o777, 0o600);
  });

  it("issues client certs whose CN/O are user and groups, and kubelet certs for both uses", () => {
    assert.match(
      new X509Certificate(readFileSync(pki.admin.cert)).subject,
      /O=system:masters\nCN=kubernetes-admin/,
    );
    const kubelet = new X509Certificate(readFileSync(pki.kubelets["c1-worker"].cert));
    assert.match(kubelet.subject, /O=system:nodes\nCN=system:node:c1-worker/);
    assert.ok(kubelet.checkIP("172.30.1.3"));
    assert.deepEqual(kubelet.keyUsage?.sort(), ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
  });

  it("reuses the CA when run again", () => {
    const before = readFileSync(pki.ca.cert, "utf8");
    createClusterKubePki(pki.dir, {
      clusterName: "c1",
      apiServerIps: [],
      serviceSubnet: "10.96.0.0/16",
      nodes: [],
    });
    assert.equal(readFileSync(pki.ca.cert, "utf8"), before);
  });
});
