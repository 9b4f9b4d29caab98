/** KVStoreMesh's pure parts: where a remote lands in the cache, its cached config, the config directory. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { etcdReplacedReason } from "../../lib/clustermesh/etcd-replaced.js";
import { canaryName, keys } from "../../lib/kvstore/paths.js";
import { ownClusterConfig } from "../../lib/kvstore/values/cluster-config.js";
import { readConfigDir, watchConfigDir } from "./config-dir.js";
import { cacheCanaryKey, cachedClusterConfig, cacheRoot, cacheStorePrefix } from "./layout.js";

describe("KVStoreMesh cache layout", () => {
  it("puts each kind where Cilium's readers of a cached remote look (suffixes copied as is)", () => {
    assert.equal(cacheStorePrefix("nodes", "c2"), "cilium/cache/nodes/v1/c2");
    assert.equal(cacheStorePrefix("services", "c2"), "cilium/cache/services/v1/c2");
    assert.equal(cacheStorePrefix("identities", "c2"), "cilium/cache/identities/v1/c2/id");
    assert.equal(cacheStorePrefix("ipcache", "c2"), "cilium/cache/ip/v1/c2");
    assert.equal(cacheRoot("identities", "c2"), "cilium/cache/identities/v1/c2/");
    assert.equal(cacheCanaryKey("ipcache", "c2"), "cilium/synced/c2/cilium/cache/ip/v1");
    assert.equal(cacheCanaryKey("nodes", "c2"), keys.canary("c2", canaryName("nodes", "cache")));
  });

  it("the cached cluster config keeps id and max-connected-clusters, says cached + canaries, no exports", () => {
    const source = {
      ...ownClusterConfig(7, 511),
      capabilities: { ...ownClusterConfig(7, 511).capabilities, serviceExportsEnabled: true },
    };
    assert.deepEqual(cachedClusterConfig(source), {
      id: 7,
      capabilities: {
        syncedCanaries: true,
        cached: true,
        maxConnectedClusters: 511,
        endpointSlicesExportMode: "",
      },
    });
  });
});

describe("a remote etcd replaced under a session", () => {
  it("is noticed by its cluster id or its revision going back", () => {
    const seen = { clusterId: undefined, revision: -1n };
    assert.equal(etcdReplacedReason(seen, { cluster_id: "a", revision: "10" }), undefined);
    assert.equal(etcdReplacedReason(seen, { cluster_id: "a", revision: "12" }), undefined);
    assert.match(
      etcdReplacedReason(seen, { cluster_id: "a", revision: "3" }) ?? "",
      /went back from 12 to 3/,
    );
    assert.match(etcdReplacedReason(seen, { cluster_id: "b", revision: "20" }) ?? "", /cluster id changed/);
  });
});

describe("the --clustermesh-config directory", () => {
  const config = (cluster: string, endpoint: string) =>
    `endpoints:\n- ${endpoint}\ntrusted-ca-file: /var/lib/cilium/clustermesh/${cluster}.etcd-client-ca.crt\n` +
    "cert-file: /var/lib/cilium/clustermesh/common-etcd-client.crt\nkey-file: /var/lib/cilium/clustermesh/common-etcd-client.key\n";

  it("reads a mounted Secret (symlinked files, dot-dirs skipped) into usable and unusable remotes", () => {
    const dir = mkdtempSync(join(tmpdir(), "kvstoremesh-config-"));
    try {
      writeFileSync(join(dir, "..data-c2"), config("c2", "https://10.0.0.2:2379"));
      symlinkSync(join(dir, "..data-c2"), join(dir, "c2"));
      writeFileSync(join(dir, "c2.etcd-client-ca.crt"), "CA");
      writeFileSync(join(dir, "common-etcd-client.crt"), "CERT");
      writeFileSync(join(dir, "common-etcd-client.key"), "KEY");
      writeFileSync(join(dir, "c3"), config("c3", "https://10.0.0.3:2379"));
      writeFileSync(join(dir, "c1"), config("c1", "https://10.0.0.1:2379"));
      assert.deepEqual([...readConfigDir(dir).keys()].sort(), [
        "c1",
        "c2",
        "c2.etcd-client-ca.crt",
        "c3",
        "common-etcd-client.crt",
        "common-etcd-client.key",
      ]);
      let seen: { name: string; error?: string; endpoints?: string[] }[] = [];
      const watch = watchConfigDir(
        dir,
        "c1",
        (entries) => {
          seen = entries.map((e) =>
            "error" in e
              ? { name: e.name, error: e.error }
              : { name: e.name, endpoints: e.connection.endpoints },
          );
        },
        (error) => assert.fail(error),
      );
      watch.stop();
      // c1 is the local cluster (ignored); c3's CA file is missing: reported, not dropped
      assert.deepEqual(seen, [
        { name: "c2", endpoints: ["https://10.0.0.2:2379"] },
        { name: "c3", error: "missing TLS material: c3.etcd-client-ca.crt" },
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a missing directory means no remotes", () => {
    let entries: unknown[] | undefined;
    const watch = watchConfigDir(
      "/nonexistent/kvstoremesh",
      "c1",
      (e) => (entries = e),
      (error) => assert.fail(error),
    );
    watch.stop();
    assert.deepEqual(entries, []);
  });
});
