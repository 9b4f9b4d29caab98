/**
 * Our KVStoreMesh, judged by Cilium: our clustermesh-apiserver's KVStoreMesh caches one of our
 * clusters into a local etcd, and Cilium's checker (per pinned release) reads that cache as a
 * Cilium agent behind a KVStoreMesh would — the cached cluster config, every cached key and the
 * canaries — with zero rejects. An entry our validation refuses never reaches the cache.
 * Root: etcd, kube-apiserver, our clustermesh-apiserver.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { KvStoreMesh } from "../../clustermesh-apiserver/kvstoremesh/kvstoremesh.js";
import { DEFAULT_LIFECYCLE } from "../../lib/clustermesh/lifecycle.js";
import { keys } from "../../lib/kvstore/paths.js";
import { TestEtcd } from "../../lib/kvstore/testing.js";
import { emptyNode, encodeNode } from "../../lib/kvstore/values/node.js";
import { createLogger, silentLogger } from "../../lib/log.js";
import { waitFor } from "../../lib/process.js";
import {
  CILIUM_RELEASES,
  ciliumBinaries,
  etcdClientFiles,
  runChecker,
  writeEtcdClientConfig,
} from "./cilium.js";
import { OurCluster } from "./our-cluster.js";

const OURS = "ours3";
const OURS_ID = 6;

describe("Cilium's checker reads the cache our KVStoreMesh writes (root: etcd, kube-apiserver)", () => {
  const ours = new OurCluster(OURS, OURS_ID);
  const meshEtcd = new TestEtcd();
  let mesh: KvStoreMesh | undefined;
  let meshEtcdConfig = "";
  const statusOf = () => mesh?.status().find((s) => s.name === OURS);

  before(async () => {
    await Promise.all([ours.start(), meshEtcd.start()]);
    await ours.addNode("node-a", "172.29.0.2", "10.6.1.0/24", "10.6.1.1");
    await ours.addService("echo", "10.96.0.70", "10.6.1.5");
    await ours.addPod("echo-0", "10.6.1.5", OURS_ID * 65536 + 100, "172.29.0.2");
    mesh = new KvStoreMesh({
      local: { name: "mesh-local", id: 9, maxConnectedClusters: 255 },
      settings: { ...DEFAULT_LIFECYCLE, probeIntervalMs: 500 },
      localEtcd: meshEtcd.client("root"),
      leaseTtlSeconds: 60,
      log: process.env.DEBUG_CM ? createLogger({ name: "kvstoremesh", level: "debug" }) : silentLogger(),
    });
    await mesh.start();
    await mesh.setRemotes([
      {
        name: OURS,
        connection: {
          name: OURS,
          endpoints: [ours.etcd.url],
          tls: ours.etcd.tls("remote"),
          serverName: `${OURS}.mesh.cilium.io`,
          fingerprint: "ours3-1",
        },
      },
    ]);
    await waitFor("our cluster cached", () => statusOf()?.ready && statusOf()?.["num-endpoints"], {
      timeoutMs: 60_000,
    }).catch((error: Error) => {
      throw new Error(`${error.message}; status ${JSON.stringify(statusOf())}`, { cause: error });
    });
    meshEtcdConfig = writeEtcdClientConfig(
      join(meshEtcd.dir, "reader.yaml"),
      etcdClientFiles(meshEtcd, "root"),
    );
  });

  after(async () => {
    try {
      await mesh?.stop();
    } finally {
      await Promise.allSettled([ours.stop(), meshEtcd.stop()]);
    }
  });

  it("refuses an intruding node: counted, not cached", async () => {
    // a node of another cluster under our prefix (only root can write it); our apiserver deletes
    // it again as a stray key, but the KVStoreMesh's watch sees it first
    await ours.admin
      .put(keys.node(OURS, "intruder"))
      .value(encodeNode({ ...emptyNode("intruder", "elsewhere", 3), IPAddresses: [] }))
      .exec();
    await waitFor("rejection counted", () => statusOf()?.["rejected-total"]["cluster-mismatch"] === 1, {
      timeoutMs: 10_000,
    });
    assert.equal(await meshEtcd.client("root").get(`cilium/cache/nodes/v1/${OURS}/intruder`).string(), null);
  });

  for (const release of CILIUM_RELEASES) {
    it(`Cilium ${release}'s checker accepts every cached key, the cached config and the canaries`, () => {
      const report = runChecker(ciliumBinaries(release), { etcdConfig: meshEtcdConfig, clusterName: OURS });
      assert.deepEqual(
        report.keys.filter((k) => k.verdict === "rejected"),
        [],
        `Cilium ${report.cilium} rejects keys of our cache`,
      );
      assert.equal(report.clusterConfigError, undefined);
      assert.equal(report.clusterConfig?.id, OURS_ID);
      assert.equal(report.clusterConfig?.capabilities?.cached, true);
      assert.deepEqual(report.missingCanaries, [], "canaries Cilium's agents wait for behind a KVStoreMesh");
      for (const kind of ["cached-node", "cached-service", "cached-identity", "cached-ipcache"]) {
        assert.ok(
          (report.counts[kind]?.accepted ?? 0) > 0,
          `no ${kind} accepted: ${JSON.stringify(report.counts)}`,
        );
      }
    });
  }
});
