/**
 * Cilium reads us (issue 15 part 2), per pinned Cilium release:
 *   (a) Cilium's own KVStoreMesh, with our cluster as its remote (mutual TLS as the `remote` user,
 *       like a Cilium agent), turns ready with the counts we published and follows a service, a
 *       pod (IP + identity) and a node being added and removed;
 *   (b) Cilium's decoders and validators (the checker) accept every key our clustermesh-apiserver
 *       writes, and every key of KVStoreMesh's cache of it.
 * Root: starts etcd, the lab's kube-apiserver, our clustermesh-apiserver and Cilium's binaries
 * (built on first use by test/interop/build.sh: minutes when cold, then cached).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  CACHE_PREFIX,
  HAS_CLUSTER_CONFIG_KEY,
  IDENTITY_IDS_PREFIX,
  IP_ENTRIES_PREFIX,
  keys,
  NODES_PREFIX,
  SERVICE_EXPORTS_PREFIX,
  SERVICES_PREFIX,
} from "../../lib/kvstore/paths.js";
import { TestEtcd } from "../../lib/kvstore/testing.js";
import { waitFor } from "../../lib/process.js";
import {
  CILIUM_RELEASES,
  type CiliumBinaries,
  type CiliumRemoteClusterStatus,
  ciliumBinaries,
  etcdClientFiles,
  KvStoreMesh,
  RELEASE_TRAITS,
  runChecker,
  writeEtcdClientConfig,
} from "./cilium.js";
import { NAMESPACE, OurCluster } from "./our-cluster.js";

const OURS = "ours1";
const OURS_ID = 7;

for (const release of CILIUM_RELEASES) {
  describe(`Cilium ${release} reads our cluster (root: etcd, kube-apiserver, Cilium's kvstoremesh)`, () => {
    const ours = new OurCluster(OURS, OURS_ID);
    const meshEtcd = new TestEtcd();
    let cilium: CiliumBinaries;
    let mesh: KvStoreMesh;
    let meshEtcdConfig = "";

    /** What we published, counted the way Cilium's status counts it. */
    async function published() {
      return {
        nodes: (await ours.keys(`${NODES_PREFIX}/${OURS}/`)).length,
        services: (await ours.keys(`${SERVICES_PREFIX}/${OURS}/`)).length,
        identities: (await ours.keys(`${IDENTITY_IDS_PREFIX}/`)).length,
        endpoints: (await ours.keys(`${IP_ENTRIES_PREFIX}/`)).length,
      };
    }

    const counts = (r: CiliumRemoteClusterStatus) => ({
      nodes: r["num-nodes"] ?? 0,
      services: r["num-shared-services"] ?? 0,
      identities: r["num-identities"] ?? 0,
      endpoints: r["num-endpoints"] ?? 0,
    });

    before(async () => {
      cilium = ciliumBinaries(release);
      await Promise.all([ours.start(), meshEtcd.start()]);
      await ours.addNode("node-a", "172.30.0.2", "10.7.1.0/24", "10.7.1.1");
      await ours.addService("echo", "10.96.0.50", "10.7.1.5");
      await ours.addPod("echo-0", "10.7.1.5", OURS_ID * 65536 + 100, "172.30.0.2", 3);
      await waitFor("our keys published", async () => {
        const p = await published();
        return p.nodes === 1 && p.services === 1 && p.identities === 1 && p.endpoints === 1;
      });
      meshEtcdConfig = writeEtcdClientConfig(
        join(meshEtcd.dir, "local-etcd.yaml"),
        etcdClientFiles(meshEtcd, "root"),
      );
      mesh = new KvStoreMesh(cilium, {
        dir: meshEtcd.dir,
        clusterName: "cilium-km",
        clusterId: 9,
        localEtcdConfig: meshEtcdConfig,
      });
      // A Cilium agent's (and KVStoreMesh's) identity towards a remote clustermesh-apiserver.
      mesh.addRemote(OURS, ours.clientFiles("remote"));
    });

    after(async () => {
      try {
        await mesh?.stop();
      } finally {
        await Promise.allSettled([ours.stop(), meshEtcd.stop()]);
      }
    });

    it("the checker (Cilium's decoders and validators) accepts every key our clustermesh-apiserver writes", async () => {
      const report = runChecker(cilium, {
        etcdConfig: writeEtcdClientConfig(
          join(ours.etcd.dir, "admin.yaml"),
          ours.clientFiles(`admin-${OURS}`),
        ),
        clusterName: OURS,
      });
      const rejected = report.keys.filter((k) => k.verdict === "rejected");
      assert.deepEqual(rejected, [], `Cilium ${report.cilium} rejects keys we wrote`);
      assert.equal(report.clusterConfigError, undefined);
      assert.deepEqual(report.missingCanaries, [], "sync canaries Cilium's readers wait for");
      for (const kind of ["node", "service", "identity", "ipcache", "cluster-config", "heartbeat"]) {
        assert.ok(
          (report.counts[kind]?.accepted ?? 0) > 0,
          `no ${kind} key accepted: ${JSON.stringify(report.counts)}`,
        );
      }
      // Cilium's own encoding (json.Marshal of what it decoded) of every node, service and ipcache
      // value is the bytes we wrote: a Cilium reader comparing values sees no spurious change.
      const differing: { key: string; ours: string | null; cilium: string }[] = [];
      for (const verdict of report.keys) {
        if (verdict.canonical === undefined) continue;
        const raw = await ours.admin.get(verdict.key).string();
        if (raw !== verdict.canonical)
          differing.push({ key: verdict.key, ours: raw, cilium: verdict.canonical });
      }
      assert.deepEqual(differing, [], `Cilium ${report.cilium} encodes these differently`);
      assert.ok(
        report.keys.filter((k) => k.canonical !== undefined).length >= 3,
        "a node, a service and an ipcache entry compared",
      );
    });

    it("a Cilium 1.15 agent's first read works: the remote user reads cilium/.has-cluster-config", async () => {
      const remote = ours.etcd.client("remote");
      assert.equal(await remote.get(HAS_CLUSTER_CONFIG_KEY).string(), "true");
      assert.ok(await remote.get(keys.canary(OURS, SERVICE_EXPORTS_PREFIX)).string());
    });

    it("Cilium's KVStoreMesh turns ready for every kind with the counts we published", async () => {
      await mesh.start();
      const ready = await mesh.waitFor("our cluster ready", (r) => r.ready === true, OURS, 90_000);
      assert.deepEqual(ready.synced, {
        nodes: true,
        services: true,
        identities: true,
        endpoints: true,
        ...(RELEASE_TRAITS[release].serviceExports ? { "service-exports": true } : {}),
      });
      assert.deepEqual(counts(ready), await published());
      // What it cached is what we wrote, byte for byte (KVStoreMesh copies raw values).
      const local = meshEtcd.client("root");
      assert.equal(
        await local.get(`${CACHE_PREFIX}/services/v1/${OURS}/${NAMESPACE}/echo`).string(),
        await ours.admin.get(keys.service(OURS, NAMESPACE, "echo")).string(),
      );
    });

    it("Cilium's KVStoreMesh follows a service, a pod and a node being added and removed", async () => {
      const before = await published();
      await ours.addService("second", "10.96.0.51", "10.7.2.5");
      await ours.addPod("second-0", "10.7.2.5", OURS_ID * 65536 + 101, "172.30.0.3");
      await ours.addNode("node-b", "172.30.0.3", "10.7.2.0/24", "10.7.2.1");
      const grown = {
        nodes: before.nodes + 1,
        services: before.services + 1,
        identities: before.identities + 1,
        endpoints: before.endpoints + 1,
      };
      await mesh.waitFor("added entries", (r) => JSON.stringify(counts(r)) === JSON.stringify(grown), OURS);
      const local = meshEtcd.client("root");
      assert.ok(await local.get(`${CACHE_PREFIX}/ip/v1/${OURS}/10.7.2.5`).string());
      assert.ok(await local.get(`${CACHE_PREFIX}/nodes/v1/${OURS}/node-b`).string());
      assert.ok(
        await local.get(`${CACHE_PREFIX}/identities/v1/${OURS}/id/${OURS_ID * 65536 + 101}`).string(),
      );

      await ours.removeService("second");
      await ours.removePod("second-0", OURS_ID * 65536 + 101);
      await ours.removeNode("node-b");
      await mesh.waitFor(
        "removed entries",
        (r) => JSON.stringify(counts(r)) === JSON.stringify(before),
        OURS,
      );
      assert.equal(await local.get(`${CACHE_PREFIX}/ip/v1/${OURS}/10.7.2.5`).string(), null);
      assert.equal(await local.get(`${CACHE_PREFIX}/services/v1/${OURS}/${NAMESPACE}/second`).string(), null);
    });

    it("the checker accepts every key of KVStoreMesh's cache of our cluster (the cache layout)", async () => {
      await mesh.waitFor("our cluster ready", (r) => r.ready === true, OURS);
      const report = runChecker(cilium, { etcdConfig: meshEtcdConfig, clusterName: OURS });
      const rejected = report.keys.filter((k) => k.verdict === "rejected");
      assert.deepEqual(rejected, []);
      assert.equal(report.clusterConfig?.capabilities?.cached, true);
      assert.deepEqual(report.missingCanaries, []);
      for (const kind of ["cached-node", "cached-service", "cached-identity", "cached-ipcache"]) {
        assert.ok(
          (report.counts[kind]?.accepted ?? 0) > 0,
          `no ${kind} accepted: ${JSON.stringify(report.counts)}`,
        );
      }
    });
  });
}
