/**
 * The cache layout (issue 15 part 4): our agent reads a remote served through a KVStoreMesh — the
 * remote's cluster config in the KVStoreMesh's etcd says `cached: true`, its data lives under
 * cilium/cache/<kind>/v1/<cluster>/ with canaries cilium/synced/<cluster>/cilium/cache/<kind>/v1.
 * The writer is Cilium's own KVStoreMesh (pinned release), caching one of our clusters; our agent's
 * cluster-mesh manager connects to the KVStoreMesh's etcd like to any remote, and follows a service
 * and a pod being added and removed. Root: etcd, kube-apiserver, Cilium's kvstoremesh.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ClusterMeshManager } from "../../agent/clustermesh/manager.js";
import { DEFAULT_LIFECYCLE } from "../../lib/clustermesh/lifecycle.js";
import type { RemoteEntry } from "../../lib/clustermesh/remote-entries.js";
import { TestEtcd } from "../../lib/kvstore/testing.js";
import { createLogger, silentLogger } from "../../lib/log.js";
import { waitFor } from "../../lib/process.js";
import {
  CILIUM_RELEASES,
  type CiliumBinaries,
  ciliumBinaries,
  etcdClientFiles,
  KvStoreMesh,
  writeEtcdClientConfig,
} from "./cilium.js";
import { OurCluster } from "./our-cluster.js";

const OURS = "ours2";
const OURS_ID = 5;
const LOCAL = { name: "c1", id: 1, maxConnectedClusters: 255 as const };
const LOCAL_NODES = [{ name: "c1-w", internalIp: "172.31.0.3", podCidrs: ["10.1.0.0/24"] }];

for (const release of CILIUM_RELEASES) {
  describe(`our agent reads a remote cached by Cilium ${release}'s KVStoreMesh (root)`, () => {
    const ours = new OurCluster(OURS, OURS_ID);
    const meshEtcd = new TestEtcd();
    const stateDir = mkdtempSync(join(tmpdir(), "interop-agent-state-"));
    let cilium: CiliumBinaries;
    let mesh: KvStoreMesh;
    let manager: ClusterMeshManager | undefined;

    before(async () => {
      cilium = ciliumBinaries(release);
      await Promise.all([ours.start(), meshEtcd.start()]);
      await ours.addNode("node-a", "172.31.0.2", "10.5.1.0/24", "10.5.1.1");
      await ours.addService("echo", "10.96.0.60", "10.5.1.5");
      await ours.addPod("echo-0", "10.5.1.5", OURS_ID * 65536 + 100, "172.31.0.2");
      mesh = new KvStoreMesh(cilium, {
        dir: meshEtcd.dir,
        clusterName: "cilium-km",
        clusterId: 9,
        localEtcdConfig: writeEtcdClientConfig(
          join(meshEtcd.dir, "local-etcd.yaml"),
          etcdClientFiles(meshEtcd, "root"),
        ),
      });
      mesh.addRemote(OURS, ours.clientFiles("remote"));
      await mesh.start();
      await mesh.waitFor("our cluster cached", (r) => r.ready === true, OURS, 90_000);
    });

    after(async () => {
      try {
        await manager?.stop();
        await mesh?.stop();
      } finally {
        await Promise.allSettled([ours.stop(), meshEtcd.stop()]);
        rmSync(stateDir, { recursive: true, force: true });
      }
    });

    const statusOf = () => manager?.status().find((s) => s.name === OURS);
    const backendsOf = (service: string) =>
      Object.keys(
        manager?.datapathInputs(LOCAL_NODES).remoteBackends.get(`demo/${service}`)?.[0]?.backends ?? {},
      );

    it("syncs every kind from the cache layout, with nothing rejected", async () => {
      manager = new ClusterMeshManager({
        local: LOCAL,
        settings: { ...DEFAULT_LIFECYCLE, probeIntervalMs: 200, probeTimeoutMs: 1_000 },
        stateDir,
        log: process.env.DEBUG_CM ? createLogger({ name: "test", level: "debug" }) : silentLogger(),
        onChange: () => {},
      });
      // Cilium agents reach their KVStoreMesh as the local-<cluster> user; this etcd has no auth.
      const entry: RemoteEntry = {
        name: OURS,
        connection: {
          name: OURS,
          endpoints: [meshEtcd.url],
          tls: meshEtcd.tls("local-cilium-km"),
          serverName: "clustermesh-apiserver.cilium.io",
          fingerprint: "cached-1",
        },
      };
      manager.setRemotes([entry]);
      await waitFor("our agent synced the cached remote", () => statusOf()?.ready, {
        timeoutMs: 30_000,
      }).catch((error: Error) => {
        throw new Error(`${error.message}; status: ${JSON.stringify(statusOf())}`, { cause: error });
      });
      const status = statusOf();
      assert.deepEqual(
        [status?.numNodes, status?.numSharedServices, status?.numIdentities, status?.numEndpoints],
        [1, 1, 1, 1],
      );
      assert.deepEqual(status?.rejectedNow, {});
      assert.deepEqual(status?.ignoredNow, {});
      assert.deepEqual(backendsOf("echo"), ["10.5.1.5"]);
      const inputs = manager.datapathInputs(LOCAL_NODES);
      assert.equal(inputs.remoteNodes.length, 1);
      assert.ok(
        inputs.ipcache.some((e) => e.prefix.startsWith("10.5.1.5")),
        JSON.stringify(inputs.ipcache),
      );
    });

    it("follows a service and a pod being added and removed through the KVStoreMesh", async () => {
      await ours.addService("second", "10.96.0.61", "10.5.1.6");
      await ours.addPod("second-0", "10.5.1.6", OURS_ID * 65536 + 101, "172.31.0.2");
      await waitFor(
        "added service and pod",
        () => backendsOf("second").length === 1 && statusOf()?.numEndpoints === 2,
        { timeoutMs: 30_000 },
      ).catch((error: Error) => {
        const services = [...(manager?.datapathInputs(LOCAL_NODES).remoteBackends.keys() ?? [])];
        throw new Error(`${error.message}; status ${JSON.stringify(statusOf())}; services ${services}`, {
          cause: error,
        });
      });
      assert.equal(statusOf()?.numIdentities, 2);
      await ours.removeService("second");
      await ours.removePod("second-0", OURS_ID * 65536 + 101);
      await waitFor(
        "removed service and pod",
        () =>
          backendsOf("second").length === 0 &&
          statusOf()?.numEndpoints === 1 &&
          statusOf()?.numIdentities === 1,
        { timeoutMs: 30_000 },
      );
    });
  });
}
