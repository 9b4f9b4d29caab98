/**
 * KVStoreMesh against real etcds (root: etcd): a remote (c2's etcd, as its clustermesh-apiserver
 * publishes it) is cached into the local etcd (c1's) in Cilium's cache layout; a bad entry never
 * reaches the cache; our agent's ClusterMeshManager reads the cache; remote restarts and a wiped
 * remote etcd do not flap the cache; removing the remote deletes its cache.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Etcd3 } from "etcd3";
import { ClusterMeshManager } from "../../agent/clustermesh/manager.js";
import { KvStoreMesh } from "../../clustermesh-apiserver/kvstoremesh/kvstoremesh.js";
import { cacheCanaryKey } from "../../clustermesh-apiserver/kvstoremesh/layout.js";
import { kvstoreMeshMetricFamilies } from "../../clustermesh-apiserver/kvstoremesh/metrics.js";
import { apiserverMetrics } from "../../clustermesh-apiserver/metrics.js";
import type { KvStoreMeshRemoteStatus } from "../../lib/api/kvstoremesh-status.js";
import {
  CACHE_REACHABILITY_PREFIX,
  cacheReachabilityKey,
  decodeCacheReachability,
} from "../../lib/clustermesh/cache-reachability.js";
import { DEFAULT_LIFECYCLE } from "../../lib/clustermesh/lifecycle.js";
import type { RemoteEntry } from "../../lib/clustermesh/remote-entries.js";
import { CANARY_NAMES, HEARTBEAT_KEY, keys } from "../../lib/kvstore/paths.js";
import { TestEtcd } from "../../lib/kvstore/testing.js";
import {
  decodeClusterConfig,
  encodeClusterConfig,
  ownClusterConfig,
} from "../../lib/kvstore/values/cluster-config.js";
import { encodeIpIdentityPair } from "../../lib/kvstore/values/ipcache.js";
import { emptyNode, encodeNode } from "../../lib/kvstore/values/node.js";
import { encodeService } from "../../lib/kvstore/values/service.js";
import { rfc3339 } from "../../lib/kvstore/values/timestamp.js";
import { createLogger, silentLogger } from "../../lib/log.js";
import { waitFor } from "../../lib/process.js";
import { promlint } from "../../testing/promlint.js";

const LOCAL = { name: "c1", id: 1, maxConnectedClusters: 255 as const };
const SETTINGS = { ...DEFAULT_LIFECYCLE, probeIntervalMs: 200, probeTimeoutMs: 500, reconnectMaxMs: 1_000 };
const log = () => (process.env.DEBUG_CM ? createLogger({ name: "test", level: "debug" }) : silentLogger());

/** What c2's clustermesh-apiserver publishes: a node, a global service, its backends' ipcache, an identity. */
async function publish(admin: Etcd3, backends: string[]): Promise<void> {
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
  for (const name of Object.values(CANARY_NAMES))
    await admin.put(keys.canary("c2", name)).value(rfc3339()).exec();
}

/** Every key under `prefix` with its value; the reachability mirrors are not cached data. */
async function dump(client: Etcd3, prefix: string): Promise<Record<string, string>> {
  const all = await client.getAll().prefix(prefix).strings();
  return Object.fromEntries(
    Object.entries(all).filter(([key]) => !key.startsWith(CACHE_REACHABILITY_PREFIX)),
  );
}

describe("KVStoreMesh caches a remote cluster into the local etcd (root: etcd)", () => {
  const remote = new TestEtcd();
  const local = new TestEtcd();
  const stateDir = mkdtempSync(join(tmpdir(), "kvstoremesh-agent-"));
  let mesh: KvStoreMesh | undefined;
  let agent: ClusterMeshManager | undefined;
  let localAdmin: Etcd3;
  let remoteAdmin: Etcd3;
  /** Deletions the local etcd saw under cilium/cache/ (a flapping cache shows up here). */
  const cacheDeletes: string[] = [];

  const remoteEntry = (): RemoteEntry => ({
    name: "c2",
    connection: {
      name: "c2",
      endpoints: [remote.url],
      tls: remote.tls("remote"),
      serverName: "c2.mesh.cilium.io",
      fingerprint: "c2-1",
    },
  });
  const statusOf = (): KvStoreMeshRemoteStatus | undefined => mesh?.status().find((s) => s.name === "c2");

  before(async () => {
    await Promise.all([remote.start(), local.start()]);
    localAdmin = local.client("root");
    remoteAdmin = remote.client("root");
    const watcher = await localAdmin.watch().prefix("cilium/cache/").create();
    watcher.on("delete", (kv) => {
      const key = kv.key.toString();
      if (!key.startsWith(CACHE_REACHABILITY_PREFIX)) cacheDeletes.push(key);
    });
  });
  after(async () => {
    try {
      await agent?.stop();
      await mesh?.stop();
    } finally {
      await Promise.allSettled([remote.stop(), local.stop()]);
      rmSync(stateDir, { recursive: true, force: true });
    }
  });

  it("caches every kind in the cache layout, with the cached cluster config and the canaries", async () => {
    await publish(remoteAdmin, ["10.2.0.7", "10.2.0.8"]);
    mesh = new KvStoreMesh({
      local: LOCAL,
      settings: SETTINGS,
      localEtcd: localAdmin,
      leaseTtlSeconds: 60,
      log: log(),
    });
    await mesh.start();
    await mesh.setRemotes([remoteEntry()]);
    await waitFor("c2 cached", () => statusOf()?.ready, { timeoutMs: 15_000 }).catch((error: Error) => {
      throw new Error(`${error.message}; status ${JSON.stringify(statusOf())}`, { cause: error });
    });
    const remoteState = await dump(remoteAdmin, "cilium/state/");
    const cache = await dump(localAdmin, "cilium/cache/");
    assert.deepEqual(Object.keys(cache).sort(), [
      "cilium/cache/identities/v1/c2/id/131080",
      "cilium/cache/ip/v1/c2/10.2.0.7",
      "cilium/cache/ip/v1/c2/10.2.0.8",
      "cilium/cache/nodes/v1/c2/w",
      "cilium/cache/services/v1/c2/demo/echo",
    ]);
    // byte for byte what the remote published
    assert.equal(cache["cilium/cache/nodes/v1/c2/w"], remoteState["cilium/state/nodes/v1/c2/w"]);
    assert.equal(cache["cilium/cache/ip/v1/c2/10.2.0.7"], remoteState["cilium/state/ip/v1/default/10.2.0.7"]);
    assert.equal(
      cache["cilium/cache/identities/v1/c2/id/131080"],
      remoteState["cilium/state/identities/v1/id/131080"],
    );
    const config = decodeClusterConfig("c2", (await localAdmin.get(keys.clusterConfig("c2")).string()) ?? "");
    assert.equal(config.id, 2);
    assert.equal(config.capabilities.cached, true);
    assert.equal(config.capabilities.syncedCanaries, true);
    for (const kind of ["nodes", "services", "identities", "ipcache"] as const)
      assert.ok(await localAdmin.get(cacheCanaryKey(kind, "c2")).string(), `${kind} canary`);
    const status = statusOf();
    assert.deepEqual(
      [
        status?.["num-nodes"],
        status?.["num-shared-services"],
        status?.["num-identities"],
        status?.["num-endpoints"],
      ],
      [1, 1, 1, 2],
    );
  });

  it("refuses a bad remote entry: never cached, counted per reason", async () => {
    await remoteAdmin
      .put(keys.node("c2", "bad"))
      .value(encodeNode({ ...emptyNode("bad", "c3", 3), IPAddresses: [] }))
      .exec();
    await remoteAdmin.put(keys.identity(7)).value("k8s:app=stolen;").exec();
    await waitFor("rejections counted", () => (statusOf()?.["rejected-now"]["cluster-mismatch"] ?? 0) >= 1, {
      timeoutMs: 5_000,
    });
    await waitFor(
      "identity rejection counted",
      () => Object.values(statusOf()?.["rejected-now"] ?? {}).length >= 2,
      {
        timeoutMs: 5_000,
      },
    );
    const cache = await dump(localAdmin, "cilium/cache/");
    assert.equal(cache["cilium/cache/nodes/v1/c2/bad"], undefined);
    assert.equal(cache["cilium/cache/identities/v1/c2/id/7"], undefined);
    await remoteAdmin.delete().key(keys.node("c2", "bad")).exec();
    await remoteAdmin.delete().key(keys.identity(7)).exec();
    await waitFor(
      "no current rejection",
      () => Object.keys(statusOf()?.["rejected-now"] ?? { x: 1 }).length === 0,
      {
        timeoutMs: 5_000,
      },
    );
  });

  it("serves our agent: its ClusterMeshManager reads c2 from the cache with nothing rejected", async () => {
    agent = new ClusterMeshManager({
      local: { name: "c1", id: 1, maxConnectedClusters: 255 },
      settings: { ...SETTINGS, backendTtlMs: 2_000 },
      stateDir,
      log: log(),
      onChange: () => {},
    });
    // the agent connects to its own cluster's etcd (the KVStoreMesh cache) for every remote
    agent.setRemotes([
      {
        name: "c2",
        connection: {
          name: "c2",
          endpoints: [local.url],
          tls: local.tls("local-c1"),
          serverName: "clustermesh-apiserver.cilium.io",
          fingerprint: "cache-1",
        },
      },
    ]);
    const agentStatus = () => agent?.status().find((s) => s.name === "c2");
    await waitFor("agent synced from the cache", () => agentStatus()?.ready, { timeoutMs: 15_000 }).catch(
      (error: Error) => {
        throw new Error(`${error.message}; status ${JSON.stringify(agentStatus())}`, { cause: error });
      },
    );
    const status = agentStatus();
    assert.deepEqual(
      [status?.numNodes, status?.numSharedServices, status?.numIdentities, status?.numEndpoints],
      [1, 1, 1, 2],
    );
    assert.deepEqual(status?.rejectedNow, {});
    const backends = agent
      .datapathInputs([{ name: "c1-w", internalIp: "172.30.0.3", podCidrs: ["10.1.0.0/24"] }])
      .remoteBackends.get("demo/echo")?.[0]?.backends;
    assert.deepEqual(Object.keys(backends ?? {}).sort(), ["10.2.0.7", "10.2.0.8"]);
  });

  it("the backend TTL holds through the cache: a remote unreachable from the KVStoreMesh has its backends withdrawn by the agent, and restored", async () => {
    const agentStatus = () => agent?.status().find((s) => s.name === "c2");
    const cacheBefore = await dump(localAdmin, "cilium/cache/");
    await remote.halt();
    await waitFor("mirrored unreachability", async () =>
      decodeCacheReachability(await localAdmin.get(cacheReachabilityKey("c2")).string()),
    );
    await waitFor("backends withdrawn after the TTL", () => agentStatus()?.backendsWithdrawn, {
      timeoutMs: 15_000,
    });
    // the cache itself is untouched: nodes and ipcache stay, only new connections avoid c2
    assert.deepEqual(await dump(localAdmin, "cilium/cache/"), cacheBefore);
    assert.equal(agentStatus()?.numNodes, 1);
    await remote.restart();
    await waitFor(
      "backends restored",
      () => agentStatus()?.backendsWithdrawn === false && statusOf()?.ready,
      {
        timeoutMs: 20_000,
      },
    );
    assert.equal(await localAdmin.get(cacheReachabilityKey("c2")).string(), "{}");
  });

  it("a remote restart and a wiped remote etcd do not flap the cache; the relist reconciles", async () => {
    const before = await dump(localAdmin, "cilium/cache/");
    const failures = statusOf()?.["num-failures"] ?? 0;
    await remote.restart();
    await waitFor("reconnected after the restart", () => statusOf()?.ready && statusOf(), {
      timeoutMs: 20_000,
    });
    assert.deepEqual(await dump(localAdmin, "cilium/cache/"), before);

    await remote.restart({ wipe: true });
    await waitFor("the wipe noticed", () => (statusOf()?.["num-failures"] ?? 0) > failures, {
      timeoutMs: 20_000,
    });
    // the remote is empty, its canaries are gone: the cache stays as it was
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.deepEqual(await dump(localAdmin, "cilium/cache/"), before);
    assert.deepEqual(cacheDeletes, []);
    // refilled with one backend less: after the canaries, the relist deletes exactly that one
    await publish(remote.client("root"), ["10.2.0.7"]);
    await waitFor(
      "relisted",
      async () =>
        (await localAdmin.get("cilium/cache/ip/v1/c2/10.2.0.8").string()) === null && statusOf()?.ready,
      { timeoutMs: 20_000 },
    );
    assert.deepEqual(cacheDeletes, ["cilium/cache/ip/v1/c2/10.2.0.8"]);
    const after = await dump(localAdmin, "cilium/cache/");
    assert.equal(after["cilium/cache/nodes/v1/c2/w"], before["cilium/cache/nodes/v1/c2/w"]);
  });

  it("exposes Cilium's kvstoremesh metrics, lint-clean", async () => {
    const registry = apiserverMetrics(kvstoreMeshMetricFamilies(mesh as KvStoreMesh, "c1"), () => {});
    const text = await registry.render();
    assert.match(text, /cilium_kvstoremesh_remote_clusters\{source_cluster="c1"\} 1/);
    assert.match(
      text,
      /cilium_kvstoremesh_remote_cluster_readiness_status\{source_cluster="c1",target_cluster="c2"\} 1/,
    );
    assert.match(
      text,
      /cilium_kvstoremesh_kvstore_initial_sync_completed\{.*scope="cache\/nodes\/v1\/c2".*\} 1/,
    );
    assert.match(text, /cilium_kvstoremesh_remote_cluster_rejected_total\{.*reason="cluster-mismatch".*\} 1/);
    const report = await promlint(text);
    assert.deepEqual(report.problems, []);
  });

  it("deletes the cache of a removed remote (and the agent reading it sees it go)", async () => {
    await mesh?.setRemotes([]);
    assert.deepEqual(await dump(localAdmin, "cilium/cache/"), {});
    assert.deepEqual(await dump(localAdmin, "cilium/synced/c2/"), {});
    assert.equal(await localAdmin.get(keys.clusterConfig("c2")).string(), null);
    assert.deepEqual(mesh?.status(), []);
    const agentStatus = () => agent?.status().find((s) => s.name === "c2");
    await waitFor(
      "the agent dropped c2's entries",
      () =>
        agentStatus()?.numNodes === 0 &&
        agentStatus()?.numEndpoints === 0 &&
        agentStatus()?.numIdentities === 0,
      { timeoutMs: 5_000 },
    );
  });

  it("a restarted KVStoreMesh deletes the caches of remotes removed while it was down, nothing else", async () => {
    const cached = {
      ...ownClusterConfig(9, 255),
      capabilities: { ...ownClusterConfig(9, 255).capabilities, cached: true },
    };
    await localAdmin.put(keys.clusterConfig("c9")).value(encodeClusterConfig(cached)).exec();
    await localAdmin.put("cilium/cache/nodes/v1/c9/w").value("{}").exec();
    await localAdmin.put(cacheCanaryKey("nodes", "c9")).value(rfc3339()).exec();
    // the local cluster's own config and an uncached one are not caches
    await localAdmin
      .put(keys.clusterConfig("c1"))
      .value(encodeClusterConfig(ownClusterConfig(1, 255)))
      .exec();
    const restarted = new KvStoreMesh({
      local: LOCAL,
      settings: SETTINGS,
      localEtcd: localAdmin,
      leaseTtlSeconds: 60,
      log: log(),
    });
    try {
      await restarted.start();
      await restarted.setRemotes([]);
      assert.equal(await localAdmin.get(keys.clusterConfig("c9")).string(), null);
      assert.deepEqual(await dump(localAdmin, "cilium/cache/"), {});
      assert.deepEqual(await dump(localAdmin, "cilium/synced/c9/"), {});
      assert.ok(await localAdmin.get(keys.clusterConfig("c1")).string());
    } finally {
      await restarted.stop();
    }
  });
});
