/**
 * The remote-cluster lifecycle against a real etcd (TestEtcd on loopback, client-cert auth): connect,
 * config validation, canary-gated sync, a wiped-and-refilled etcd without dropping anything, the
 * backend TTL, agent restart from persisted state, and draining on disconnect.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DEFAULT_LIFECYCLE } from "../../lib/clustermesh/lifecycle.js";
import type { RemoteEntry } from "../../lib/clustermesh/remote-entries.js";
import { CANARY_NAMES, HEARTBEAT_KEY, keys } from "../../lib/kvstore/paths.js";
import { TestEtcd } from "../../lib/kvstore/testing.js";
import { encodeClusterConfig, ownClusterConfig } from "../../lib/kvstore/values/cluster-config.js";
import { encodeIpIdentityPair } from "../../lib/kvstore/values/ipcache.js";
import { emptyNode, encodeNode } from "../../lib/kvstore/values/node.js";
import { encodeService } from "../../lib/kvstore/values/service.js";
import { rfc3339 } from "../../lib/kvstore/values/timestamp.js";
import { createLogger, silentLogger } from "../../lib/log.js";
import { MetricsRegistry } from "../../lib/metrics/registry.js";
import { waitFor } from "../../lib/process.js";
import { promlint } from "../../testing/promlint.js";
import { ClusterMeshManager } from "./manager.js";
import { registerClusterMeshMetrics } from "./metrics.js";

const LOCAL = { name: "c1", id: 1, maxConnectedClusters: 255 as const };
const LOCAL_NODES = [{ name: "c1-w", internalIp: "172.30.0.3", podCidrs: ["10.1.0.0/24"] }];

describe("remote cluster lifecycle against a real etcd (root: etcd)", () => {
  const etcd = new TestEtcd();
  const stateDir = mkdtempSync(join(tmpdir(), "clustermesh-state-"));
  const managers: ClusterMeshManager[] = [];

  /** What c2's clustermesh-apiserver would publish. */
  async function publish({ backends = ["10.2.0.7", "10.2.0.8"], canaries = true } = {}) {
    const admin = etcd.client("root");
    const node = {
      ...emptyNode("w", "c2", 2),
      IPAddresses: [{ Type: "InternalIP" as const, IP: "172.30.0.5" }],
      IPv4AllocCIDR: "10.2.0.0/24",
    };
    await admin
      .put(keys.clusterConfig("c2"))
      .value(encodeClusterConfig(ownClusterConfig(2, 255)))
      .exec();
    await admin.put(keys.node("c2", "w")).value(encodeNode(node)).exec();
    await admin
      .put(keys.service("c2", "demo", "echo"))
      .value(
        encodeService({
          cluster: "c2",
          namespace: "demo",
          name: "echo",
          frontends: {},
          backends: Object.fromEntries(backends.map((ip) => [ip, { http: { Protocol: "TCP", Port: 8080 } }])),
          labels: {},
          selector: {},
          includeExternal: true,
          shared: true,
          clusterID: 2,
        }),
      )
      .exec();
    for (const ip of backends) {
      await admin
        .put(keys.ip(ip))
        .value(
          encodeIpIdentityPair({
            IP: ip,
            prefixLength: null,
            HostIP: "172.30.0.5",
            ID: 131_080,
            Key: 0,
            Metadata: "",
          }),
        )
        .exec();
    }
    await admin.put(keys.identity(131_080)).value("k8s:app=echo;k8s:io.cilium.k8s.policy.cluster=c2;").exec();
    await admin.put(HEARTBEAT_KEY).value(rfc3339()).exec();
    if (canaries) {
      for (const name of Object.values(CANARY_NAMES))
        await admin.put(keys.canary("c2", name)).value(rfc3339()).exec();
    }
  }

  const entry = (): RemoteEntry => ({
    name: "c2",
    connection: {
      name: "c2",
      endpoints: [etcd.url],
      tls: etcd.tls("remote"),
      serverName: "c2.mesh.cilium.io",
      fingerprint: "f1",
    },
  });
  const newManager = (backendTtlMs = 2_000) => {
    const manager = new ClusterMeshManager({
      local: LOCAL,
      settings: {
        ...DEFAULT_LIFECYCLE,
        backendTtlMs,
        probeIntervalMs: 200,
        probeTimeoutMs: 500,
        reconnectMaxMs: 1_000,
      },
      stateDir,
      log: process.env.DEBUG_CM ? createLogger({ name: "test", level: "debug" }) : silentLogger(),
      onChange: () => {},
    });
    managers.push(manager);
    return manager;
  };
  const backendsOf = (manager: ClusterMeshManager) =>
    Object.keys(
      manager.datapathInputs(LOCAL_NODES).remoteBackends.get("demo/echo")?.[0]?.backends ?? {},
    ).sort();
  const statusOf = (manager: ClusterMeshManager) => manager.status().find((s) => s.name === "c2");

  before(async () => {
    await etcd.start();
  });
  after(async () => {
    await Promise.all(managers.map((m) => m.stop()));
    await etcd.stop();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it("waits for the cluster config, then syncs every kind after its canary", async () => {
    const manager = newManager();
    manager.setRemotes([entry()]);
    await waitFor("waiting for config", () => /cluster configuration/.test(statusOf(manager)?.status ?? ""), {
      timeoutMs: 5_000,
    });
    assert.equal(statusOf(manager)?.ready, false);
    await publish();
    await waitFor("ready", () => statusOf(manager)?.ready, { timeoutMs: 10_000 });
    const inputs = manager.datapathInputs(LOCAL_NODES);
    assert.deepEqual(backendsOf(manager), ["10.2.0.7", "10.2.0.8"]);
    assert.equal(inputs.ipcache.length, 2);
    assert.equal(inputs.remoteNodes.length, 1);
    const status = statusOf(manager);
    assert.deepEqual(
      [
        status?.numNodes,
        status?.numEndpoints,
        status?.numIdentities,
        status?.numSharedServices,
        status?.config.clusterId,
      ],
      [1, 2, 1, 1, 2],
    );
    await manager.stop();
  });

  it("exports Cilium's clustermesh metrics and the initial sync and change → BPF histograms", async () => {
    const manager = newManager();
    const metrics = new MetricsRegistry({ collectErrorsMetric: "test_collect_errors_total" });
    registerClusterMeshMetrics(metrics, manager, { cluster: "c1", nodeName: "c1-w" });
    manager.setRemotes([entry()]);
    await waitFor("ready", () => statusOf(manager)?.ready, { timeoutMs: 10_000 });
    // a datapath run: takes the inputs, writes the maps
    manager.datapathInputs(LOCAL_NODES);
    manager.datapathProgrammed(true);
    const source = 'source_cluster="c1",source_node_name="c1-w"';
    const target = `${source},target_cluster="c2"`;
    const sample = (text: string, name: string, labels: string) =>
      Number(new RegExp(`^${name}\\{${labels}\\} (\\S+)$`, "m").exec(text)?.[1]);
    let text = await metrics.render();
    assert.equal(sample(text, "cilium_clustermesh_remote_clusters", source), 1);
    assert.equal(sample(text, "cilium_clustermesh_remote_cluster_readiness_status", target), 1);
    assert.equal(sample(text, "cilium_clustermesh_remote_cluster_failures", target), 0);
    assert.equal(sample(text, "cilium_clustermesh_remote_cluster_nodes", target), 1);
    assert.equal(sample(text, "cilium_clustermesh_global_services", source), 1);
    assert.equal(sample(text, "cilium_clustermesh_remote_cluster_services", target), 1);
    assert.equal(sample(text, "cilium_clustermesh_remote_cluster_endpoints", target), 2);
    assert.equal(sample(text, "clustermesh_agent_remote_cluster_initial_sync_seconds_count", target), 1);
    assert.ok(sample(text, "clustermesh_agent_remote_cluster_initial_sync_seconds_sum", target) > 0);
    assert.equal(
      sample(text, "clustermesh_agent_remote_cluster_change_to_datapath_seconds_count", target),
      1,
    );
    // Prometheus' parser accepts it and `promtool check metrics` finds no problem, Cilium's names
    // included (so no exception list)
    const report = await promlint(text);
    assert.ok(report.families >= 10, `${report.families} families`);
    assert.deepEqual(report.problems, []);

    // one more change: observed once it is in a run's inputs and that run wrote the maps
    await etcd
      .client("root")
      .put(keys.ip("10.2.0.9"))
      .value(
        encodeIpIdentityPair({
          IP: "10.2.0.9",
          prefixLength: null,
          HostIP: "172.30.0.5",
          ID: 131_080,
          Key: 0,
          Metadata: "",
        }),
      )
      .exec();
    await waitFor("the new ipcache entry", () => manager.datapathInputs(LOCAL_NODES).ipcache.length === 3, {
      timeoutMs: 5_000,
    });
    manager.datapathProgrammed(true);
    text = await metrics.render();
    assert.equal(
      sample(text, "clustermesh_agent_remote_cluster_change_to_datapath_seconds_count", target),
      2,
    );
    assert.equal(sample(text, "clustermesh_agent_remote_cluster_initial_sync_seconds_count", target), 1);
    await etcd.client("root").delete().key(keys.ip("10.2.0.9")).exec();
    await waitFor("the entry gone", () => manager.datapathInputs(LOCAL_NODES).ipcache.length === 2, {
      timeoutMs: 5_000,
    });
    await manager.stop();
  });

  it("keeps everything while the remote etcd is wiped and refilled, and only then removes what disappeared", async () => {
    const manager = newManager(30_000);
    manager.setRemotes([entry()]);
    await waitFor("ready", () => statusOf(manager)?.ready, { timeoutMs: 10_000 });
    let stop = false;
    const gaps: string[] = [];
    const sampler = (async () => {
      while (!stop) {
        const b = backendsOf(manager);
        if (b.length < 2 || !b.includes("10.2.0.7")) gaps.push(b.join(","));
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await etcd.restart({ wipe: true });
    // a wiped etcd restarted on the same URLs keeps its etcd cluster id: the broken watches and
    // the missing canaries are what tell
    await waitFor("the wiped etcd noticed", () => statusOf(manager)?.ready === false, { timeoutMs: 10_000 });
    // refilled without the canaries first: nothing may be taken as the truth yet
    await publish({ backends: ["10.2.0.7"], canaries: false });
    await new Promise((r) => setTimeout(r, 1_000));
    stop = true;
    await sampler;
    assert.deepEqual(gaps, [], "nothing dropped while the remote resynced");
    assert.equal(statusOf(manager)?.ready, false, "not ready without canaries");
    await publish({ backends: ["10.2.0.7"] });
    await waitFor(
      "only the really deleted backend removed",
      () => backendsOf(manager).join() === "10.2.0.7",
      {
        timeoutMs: 10_000,
      },
    );
    await waitFor("ready", () => statusOf(manager)?.ready, { timeoutMs: 10_000 });
    await manager.stop();
  });

  it("withdraws service backends after the TTL while the remote is down, keeps the ipcache, restores them", async () => {
    const manager = newManager(1_500);
    manager.setRemotes([entry()]);
    await waitFor("ready", () => statusOf(manager)?.ready, { timeoutMs: 10_000 });
    const downAt = Date.now();
    await etcd.halt();
    try {
      await waitFor("withdrawn", () => backendsOf(manager).length === 0, {
        timeoutMs: 10_000,
        intervalMs: 20,
      });
      assert.ok(Date.now() - downAt >= 1_400, "not before the TTL");
      assert.equal(statusOf(manager)?.backendsWithdrawn, true);
      assert.equal(manager.datapathInputs(LOCAL_NODES).ipcache.length, 1, "ipcache kept");
    } finally {
      await etcd.restart();
    }
    await waitFor("restored", () => backendsOf(manager).length === 1, { timeoutMs: 15_000 });
    await manager.stop();
  });

  it("serves the persisted state after an agent restart until the remote answers", async () => {
    const first = newManager(60_000);
    first.setRemotes([entry()]);
    await waitFor("ready", () => statusOf(first)?.ready, { timeoutMs: 10_000 });
    await first.stop();
    await etcd.halt();
    try {
      const second = newManager(60_000);
      second.setRemotes([entry()]);
      assert.deepEqual(backendsOf(second), ["10.2.0.7"], "from the first reconcile on");
      assert.equal(statusOf(second)?.ready, false);
      await second.stop();
    } finally {
      await etcd.restart();
    }
  });

  it("drains everything of a cluster removed from the configuration, and forgets its saved state", async () => {
    const manager = newManager();
    manager.setRemotes([entry()]);
    await waitFor("ready", () => statusOf(manager)?.ready, { timeoutMs: 10_000 });
    manager.setRemotes([]);
    await waitFor("drained", () => {
      const inputs = manager.datapathInputs(LOCAL_NODES);
      return (
        inputs.remoteNodes.length === 0 && inputs.ipcache.length === 0 && inputs.remoteBackends.size === 0
      );
    });
    assert.deepEqual(manager.status(), []);
    await waitFor("saved state removed", () => !existsSync(join(stateDir, "clustermesh", "c2.json")));
    const again = newManager();
    const unreachable = entry() as Extract<RemoteEntry, { connection: unknown }>;
    again.setRemotes([
      { ...unreachable, connection: { ...unreachable.connection, endpoints: ["https://127.0.0.1:1"] } },
    ]);
    assert.equal(again.datapathInputs(LOCAL_NODES).ipcache.length, 0, "no saved state left");
    await again.stop();
    await manager.stop();
  });
  it("reads a remote served through a KVStoreMesh (cached: true) from the cache layout", async () => {
    // What Cilium's KVStoreMesh writes into its own etcd for a remote c3 (pkg/clustermesh/kvstoremesh):
    // the remote's config with cached: true, raw copies under cilium/cache/<kind>/v1/c3/, and
    // canaries named after the cache prefixes. Nothing of c3 exists under cilium/state/.
    const admin = etcd.client("root");
    const config = ownClusterConfig(3, 255);
    config.capabilities.cached = true;
    await admin.put(keys.clusterConfig("c3")).value(encodeClusterConfig(config)).exec();
    const node = {
      ...emptyNode("w3", "c3", 3),
      IPAddresses: [{ Type: "InternalIP" as const, IP: "172.30.0.9" }],
    };
    await admin
      .put("cilium/cache/nodes/v1/c3/w3")
      .value(encodeNode({ ...node, IPv4AllocCIDR: "10.3.0.0/24" }))
      .exec();
    await admin
      .put("cilium/cache/services/v1/c3/demo/echo")
      .value(
        encodeService({
          cluster: "c3",
          namespace: "demo",
          name: "echo",
          frontends: {},
          backends: { "10.3.0.7": { http: { Protocol: "TCP", Port: 8080 } } },
          labels: {},
          selector: {},
          includeExternal: true,
          shared: true,
          clusterID: 3,
        }),
      )
      .exec();
    await admin
      .put("cilium/cache/ip/v1/c3/10.3.0.7")
      .value(
        encodeIpIdentityPair({
          IP: "10.3.0.7",
          prefixLength: null,
          HostIP: "172.30.0.9",
          ID: 196_708,
          Key: 0,
          Metadata: "",
        }),
      )
      .exec();
    await admin
      .put("cilium/cache/identities/v1/c3/id/196708")
      .value("k8s:app=echo;k8s:io.cilium.k8s.policy.cluster=c3;")
      .exec();
    await admin.put(HEARTBEAT_KEY).value(rfc3339()).exec();
    for (const kind of ["nodes", "services", "identities", "ip"])
      await admin
        .put(keys.canary("c3", `cilium/cache/${kind}/v1`))
        .value(rfc3339())
        .exec();

    const manager = newManager();
    const base = entry() as Extract<RemoteEntry, { connection: unknown }>;
    manager.setRemotes([
      { name: "c3", connection: { ...base.connection, name: "c3", tls: etcd.tls("local-c1") } },
    ]);
    const statusOfC3 = () => manager.status().find((s) => s.name === "c3");
    await waitFor("cached remote ready", () => statusOfC3()?.ready, { timeoutMs: 10_000 }).catch(
      (error: Error) => {
        throw new Error(`${error.message}; status ${JSON.stringify(statusOfC3())}`, { cause: error });
      },
    );
    const status = statusOfC3();
    assert.deepEqual(
      [status?.numNodes, status?.numEndpoints, status?.numIdentities, status?.numSharedServices],
      [1, 1, 1, 1],
    );
    assert.deepEqual(
      Object.keys(manager.datapathInputs(LOCAL_NODES).remoteBackends.get("demo/echo")?.[0]?.backends ?? {}),
      ["10.3.0.7"],
    );
    await manager.stop();
  });
});
