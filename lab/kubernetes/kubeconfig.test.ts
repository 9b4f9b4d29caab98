import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { parse } from "yaml";
import { mergeKubeconfigContext, removeKubeconfigContext, writeKubeconfig } from "./kubeconfig.js";

describe("kubeconfig files", () => {
  const dir = mkdtempSync(join(tmpdir(), "kubeconfig-test-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  const entry = (name: string) => ({
    server: `https://127.0.0.1:6443`,
    caPem: "CA",
    certPem: "CERT",
    keyPem: "KEY",
    context: `lab-${name}`,
    cluster: `lab-${name}`,
    user: `lab-${name}`,
  });

  it("merges and removes contexts like kind, keeping other entries", () => {
    const path = join(dir, "kube", "config");
    writeFileSync(join(dir, "placeholder"), "");
    writeKubeconfig(path, { ...entry("x"), context: "other", cluster: "other", user: "other" });
    mergeKubeconfigContext(path, entry("c1"));
    mergeKubeconfigContext(path, entry("c2"));
    let doc = parse(readFileSync(path, "utf8"));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(
      doc.contexts.map((c: { name: string }) => c.name),
      ["other", "lab-c1", "lab-c2"],
    );
    assert.equal(doc["current-context"], "lab-c2");
    assert.equal(doc.users[1].user["client-key-data"], Buffer.from("KEY").toString("base64"));
    mergeKubeconfigContext(path, { ...entry("c1"), server: "https://127.0.0.1:7443" });
    doc = parse(readFileSync(path, "utf8"));
    assert.equal(doc.clusters.length, 3, "re-merging replaces, never duplicates");
    removeKubeconfigContext(path, "lab-c1");
    removeKubeconfigContext(path, "lab-c1");
    doc = parse(readFileSync(path, "utf8"));
    assert.deepEqual(
      doc.contexts.map((c: { name: string }) => c.name),
      ["other", "lab-c2"],
    );
    assert.equal(doc["current-context"], "", "removing the current context unsets it");
    assert.deepEqual(
      doc.clusters.map((c: { name: string }) => c.name),
      ["other", "lab-c2"],
    );
  });
});
