/**
 * The clustermesh-apiserver process against a real etcd and a real Kubernetes control plane
 * (root: starts etcd and Kubernetes in a namespace of its own; testing/kubernetes.ts), as its
 * ServiceAccount with the least RBAC of lib/api/rbac.ts. Covers users/roles, services, nodes, CRD-based identities and IPs,
 * cluster config, heartbeat, canaries, /readyz, and a restart with a wiped etcd.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type V1EndpointSlice,
  type V1Service,
} from "@kubernetes/client-node";
import type { Etcd3 } from "etcd3";
import { issueClientCert } from "../certs/authority.js";
import { bundlePaths, saveBundle } from "../certs/store.js";
import { MESH_CRDS, MESH_GROUP, MESH_VERSION } from "../lib/api/crds.js";
import { MESH_ACCESS } from "../lib/api/rbac.js";
import { freePort } from "../lib/free-port.js";
import {
  CANARY_NAMES,
  HAS_CLUSTER_CONFIG_KEY,
  HEARTBEAT_KEY,
  keys,
  remoteWatchPrefix,
  SERVICE_EXPORTS_PREFIX,
} from "../lib/kvstore/paths.js";
import { remoteServiceDecoder } from "../lib/kvstore/remote-validation.js";
import { TestEtcd } from "../lib/kvstore/testing.js";
import type { ClusterService } from "../lib/kvstore/values/service.js";
import { WatchStore, watchWhenSynced } from "../lib/kvstore/watch-store.js";
import { silentLogger } from "../lib/log.js";
import { isRunning, type ProcessRef, startDaemon, stopProcess, waitFor } from "../lib/process.js";
import { TestKubernetes } from "../testing/kubernetes.js";
import { promlint } from "../testing/promlint.js";

const CLUSTER = "c1";
const SERVICE_KEY = keys.service(CLUSTER, "demo", "echo");
const EXPECTED_SERVICE =
  '{"cluster":"c1","namespace":"demo","name":"echo","frontends":{"10.96.0.50":{"http":{"Protocol":"TCP","Port":80}}},"backends":{"10.1.1.5":{"http":{"Protocol":"TCP","Port":8080}}},"hostnames":{},"labels":{},"selector":{"app":"echo"},"includeExternal":true,"shared":true,"clusterID":1}';

describe("clustermesh-apiserver (root: etcd + real Kubernetes control plane)", { timeout: 300_000 }, () => {
  // node-a's podCIDR must lie in the cluster CIDR: kube-controller-manager's node IPAM refuses
  // to start (and with it every controller) on a Node whose podCIDR is outside it.
  const kube = new TestKubernetes({ podSubnet: "10.1.0.0/16" });
  let kubeconfig = "";
  const etcd = new TestEtcd();
  let admin: Etcd3;
  let apiserver: ProcessRef | undefined;
  let readyzUrl = "";
  const logFile = () => join(etcd.dir, "apiserver.log");

  async function startApiServer(): Promise<void> {
    const readyz = `127.0.0.1:${await freePort()}`;
    readyzUrl = `http://${readyz}`;
    const pki = join(etcd.dir, "client-pki");
    saveBundle(pki, "admin", issueClientCert(etcd.ca, { commonName: `admin-${CLUSTER}` }));
    const files = bundlePaths(pki, "admin");
    apiserver = startDaemon({
      argv: [
        process.execPath,
        join(import.meta.dirname, "main.js"),
        `--cluster-name=${CLUSTER}`,
        "--cluster-id=1",
        `--kubeconfig=${kubeconfig}`,
        `--etcd-servers=${etcd.url}`,
        `--etcd-cafile=${files.ca}`,
        `--etcd-certfile=${files.cert}`,
        `--etcd-keyfile=${files.key}`,
        `--readyz-address=${readyz}`,
        "--max-connected-clusters=255",
        "--heartbeat-interval=500",
        "--log-level=warn",
      ],
      logFile: logFile(),
    });
  }

  async function readyz(): Promise<number> {
    const response = await fetch(`${readyzUrl}/readyz`);
    await response.text();
    return response.status;
  }

  async function waitReady(): Promise<void> {
    await waitFor<boolean>(
      "apiserver /readyz 200",
      async () => {
        if (apiserver && !isRunning(apiserver)) throw new Error(`apiserver exited; see ${logFile()}`);
        return (await readyz()) === 200;
      },
      { timeoutMs: 20_000, intervalMs: 100 },
    ).catch((error: Error) => {
      const log = existsSync(logFile()) ? readFileSync(logFile(), "utf8").slice(-3000) : "(no log)";
      throw new Error(`${error.message}\n--- apiserver log ---\n${log}`, { cause: error });
    });
  }

  const value = async (key: string) => (await admin.get(key).string()) ?? undefined;

  before(async () => {
    await Promise.all([kube.start(), etcd.start()]);
    admin = etcd.client(`admin-${CLUSTER}`);
    const kc = kube.kubeConfig();
    await kube.createCrds(MESH_CRDS);
    kubeconfig = await kube.componentKubeconfig(MESH_ACCESS.clustermeshApiserver);
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: "demo" } } });
    await core.createNode({
      body: {
        metadata: { name: "node-a" },
        spec: { podCIDRs: ["10.1.1.0/24"] },
        status: { addresses: [{ type: "InternalIP", address: "172.30.0.2" }] },
      },
    });
    const service: V1Service = {
      metadata: { name: "echo", namespace: "demo", annotations: { "service.cilium.io/global": "true" } },
      spec: {
        clusterIP: "10.96.0.50",
        selector: { app: "echo" },
        ports: [{ name: "http", port: 80, protocol: "TCP" }],
      },
    };
    await core.createNamespacedService({ namespace: "demo", body: service });
    const slice: V1EndpointSlice = {
      metadata: { name: "echo-1", namespace: "demo", labels: { "kubernetes.io/service-name": "echo" } },
      addressType: "IPv4",
      ports: [{ name: "http", port: 8080, protocol: "TCP" }],
      endpoints: [
        { addresses: ["10.1.1.5"], conditions: { ready: true } },
        { addresses: ["10.1.1.6"], conditions: { ready: false } },
      ],
    };
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    await discovery.createNamespacedEndpointSlice({ namespace: "demo", body: slice });
    // The real EndpointSlice controller adds its own slice for the selector: without pods, one
    // with `endpoints: null`, which the clustermesh-apiserver must merge as "no backends".
    await waitFor(
      "the EndpointSlice controller's slice for demo/echo",
      async () =>
        (
          await discovery.listNamespacedEndpointSlice({
            namespace: "demo",
            labelSelector:
              "kubernetes.io/service-name=echo,endpointslice.kubernetes.io/managed-by=endpointslice-controller.k8s.io",
          })
        ).items.some((s) => (s.endpoints ?? []).length === 0),
      // the controller starts once kube-controller-manager's informers have synced
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const custom = kc.makeApiClient(CustomObjectsApi);
    await custom.createClusterCustomObject({
      group: MESH_GROUP,
      version: MESH_VERSION,
      plural: "meshidentities",
      body: {
        apiVersion: `${MESH_GROUP}/${MESH_VERSION}`,
        kind: "MeshIdentity",
        metadata: { name: "65600" },
        "security-labels": {
          "k8s:app": "echo",
          "k8s:io.kubernetes.pod.namespace": "demo",
          "k8s:io.cilium.k8s.policy.cluster": CLUSTER,
        },
      },
    });
    await custom.createNamespacedCustomObject({
      group: MESH_GROUP,
      version: MESH_VERSION,
      namespace: "demo",
      plural: "meshendpoints",
      body: {
        apiVersion: `${MESH_GROUP}/${MESH_VERSION}`,
        kind: "MeshEndpoint",
        metadata: { name: "echo-pod", namespace: "demo" },
        status: {
          id: "lxc1",
          containerID: "c1",
          identity: { id: 65600, labels: [] },
          networking: { addressing: [{ ipv4: "10.1.1.5" }], node: "172.30.0.2" },
          namedPorts: [],
          state: "ready",
        },
      },
    });
    await startApiServer();
  });

  after(async () => {
    try {
      if (apiserver) await stopProcess(apiserver);
    } finally {
      await Promise.allSettled([kube.stop(), etcd.stop()]);
    }
  });

  it("turns ready and publishes config, heartbeat, canaries, services, nodes, identities and IPs", async () => {
    await waitReady();
    assert.equal(
      await value(keys.clusterConfig(CLUSTER)),
      '{"id":1,"capabilities":{"syncedCanaries":true,"maxConnectedClusters":255,"serviceExportsEnabled":false}}',
    );
    for (const name of Object.values(CANARY_NAMES)) assert.ok(await value(keys.canary(CLUSTER, name)), name);
    // Cilium >= 1.17 writes it with MCS-API off; KVStoreMesh waits for it (serviceExportsEnabled set).
    assert.ok(await value(keys.canary(CLUSTER, SERVICE_EXPORTS_PREFIX)), "service exports canary");
    assert.equal(await value(SERVICE_KEY), EXPECTED_SERVICE);
    const node = JSON.parse((await value(keys.node(CLUSTER, "node-a"))) ?? "{}");
    assert.deepEqual(node.IPAddresses, [{ Type: "InternalIP", IP: "172.30.0.2" }]);
    assert.deepEqual(node.IPv4AllocCIDR, { IP: "10.1.1.0", Mask: "////AA==" });
    assert.equal(
      await value(keys.identity(65600)),
      "k8s:app=echo;k8s:io.cilium.k8s.policy.cluster=c1;k8s:io.kubernetes.pod.namespace=demo;",
    );
    assert.equal(
      await value(keys.ip("10.1.1.5")),
      '{"IP":"10.1.1.5","Mask":null,"HostIP":"172.30.0.2","ID":65600,"Key":0,"Metadata":"","K8sNamespace":"demo","K8sPodName":"echo-pod"}',
    );
    const heartbeat = await admin.get(HEARTBEAT_KEY).exec();
    const revision = heartbeat.kvs[0]?.mod_revision;
    assert.ok(revision, "heartbeat written");
    await waitFor(
      "heartbeat refreshed",
      async () => (await admin.get(HEARTBEAT_KEY).exec()).kvs[0]?.mod_revision !== revision,
    );
    const metrics = await (await fetch(`${readyzUrl}/metrics`)).text();
    assert.match(metrics, /cilium_clustermesh_apiserver_kvstore_initial_sync_completed\{kind="services"\} 1/);
    assert.match(
      metrics,
      /cilium_clustermesh_apiserver_k8s_events_total\{resource="services",action="add"\} [1-9]/,
    );
    // Cilium's bootstrap_seconds: set once every kind synced, within the process' lifetime so far
    const bootstrap = Number(
      /^cilium_clustermesh_apiserver_bootstrap_seconds\{source_cluster="([^"]+)"\} (\S+)$/m.exec(
        metrics,
      )?.[2],
    );
    assert.ok(bootstrap > 0 && bootstrap < 120, `bootstrap_seconds ${bootstrap}`);
    assert.match(
      metrics,
      new RegExp(`^cilium_clustermesh_apiserver_bootstrap_seconds\\{source_cluster="${CLUSTER}"\\} `, "m"),
    );
    assert.match(metrics, /^# TYPE cilium_clustermesh_apiserver_metrics_collect_errors_total counter$/m);
    // Prometheus' parser accepts it and `promtool check metrics` finds no problem, Cilium's names
    // included (so no exception list)
    const report = await promlint(metrics);
    assert.ok(report.families >= 5, `${report.families} families`);
    assert.deepEqual(report.problems, []);
    assert.equal((await fetch(`${readyzUrl}/healthz`)).status, 200);
  });

  it("lets the remote user read state but not write, nor read other clusters' config", async () => {
    await admin.put(keys.clusterConfig("c9")).value('{"id":9}');
    const remote = etcd.client("remote");
    assert.equal(await remote.get(SERVICE_KEY).string(), EXPECTED_SERVICE);
    assert.ok(await remote.get(keys.clusterConfig(CLUSTER)).string());
    assert.ok(await remote.get(keys.canary(CLUSTER, CANARY_NAMES.nodes)).string());
    assert.ok(await remote.get("cilium/.heartbeat").string());
    // Cilium 1.15 agents read this first (IsClusterConfigRequired).
    assert.equal(await remote.get(HAS_CLUSTER_CONFIG_KEY).string(), "true");
    await assert.rejects(
      remote
        .put(keys.service(CLUSTER, "demo", "evil"))
        .value("{}")
        .exec(),
      /permission denied/,
    );
    await assert.rejects(remote.get(keys.clusterConfig("c9")).string(), /permission denied/);
    await assert.rejects(remote.get("cilium/synced/c9/x").string(), /permission denied/);
    // An unknown CN has no user: refused.
    await assert.rejects(etcd.client("stranger").get(SERVICE_KEY).string());
  });

  it("repairs its etcd within seconds: deleted, altered and stray keys, cluster config, canaries; counted", async () => {
    await waitReady();
    /** "A few seconds" (issue 12); the watch repairs in milliseconds on an idle machine. */
    const bound = { timeoutMs: 5_000, intervalMs: 20 };
    const nodeKey = keys.node(CLUSTER, "node-a");
    const nodeValue = await value(nodeKey);
    const configKey = keys.clusterConfig(CLUSTER);
    const config = await value(configKey);
    const canaryKey = keys.canary(CLUSTER, CANARY_NAMES.services);
    const strayKey = keys.service(CLUSTER, "demo", "intruder");
    const metric = async (pattern: RegExp) =>
      Number(pattern.exec(await (await fetch(`${readyzUrl}/metrics`)).text())?.[1] ?? Number.NaN);
    const repairs = (kind: string, drift: string) =>
      metric(new RegExp(`kvstore_repairs_total\\{kind="${kind}",drift="${drift}"\\} (\\d+)`));

    await admin.delete().key(SERVICE_KEY);
    await waitFor(
      "deleted service key restored",
      async () => (await value(SERVICE_KEY)) === EXPECTED_SERVICE,
      bound,
    );
    await admin.put(nodeKey).value('{"Name":"node-a","Cluster":"evil"}');
    await waitFor("altered node key restored", async () => (await value(nodeKey)) === nodeValue, bound);
    await admin.put(strayKey).value("{}");
    await waitFor("stray key deleted", async () => (await value(strayKey)) === undefined, bound);
    await admin.delete().key(configKey);
    await waitFor("cluster config restored", async () => (await value(configKey)) === config, bound);
    await admin.delete().key(canaryKey);
    await waitFor("canary restored", async () => (await value(canaryKey)) !== undefined, bound);

    await waitFor("repairs counted", async () => (await repairs("services", "stray")) === 1, bound);
    assert.equal(await repairs("services", "missing"), 1);
    assert.equal(await repairs("nodes", "altered"), 1);
    assert.equal(await repairs("cluster-config", "missing"), 1);
    await waitFor(
      "canary repair counted",
      async () =>
        (await metric(/kvstore_canary_repairs_total\{kind="services",drift="missing"\} (\d+)/)) === 1,
      bound,
    );
    // another cluster's config (written by the admin in the previous test) is not ours to delete
    assert.ok(await value(keys.clusterConfig("c9")));
  });

  it("follows the service: a remote watch store sees it; shared=false and delete withdraw it", async () => {
    const events: string[] = [];
    const store = new WatchStore<ClusterService>({
      prefix: remoteWatchPrefix("services", CLUSTER),
      decode: remoteServiceDecoder({ name: CLUSTER, id: 1 }),
      onUpsert: (suffix, v) => events.push(`upsert ${suffix} ${Object.keys(v.backends).join(",")}`),
      onDelete: (suffix) => events.push(`delete ${suffix}`),
      log: silentLogger(),
    });
    const abort = new AbortController();
    const running = watchWhenSynced(store, {
      client: etcd.client("remote"),
      clusterName: CLUSTER,
      canaryName: CANARY_NAMES.services,
      signal: abort.signal,
      log: silentLogger(),
    });
    try {
      await waitFor("remote store synced", () => store.synced);
      assert.deepEqual(events, ["upsert demo/echo 10.1.1.5"]);
      assert.equal(store.rejectedTotal, 0);
      const core = kube.kubeConfig().makeApiClient(CoreV1Api);
      const patch = async (shared: string) => {
        const svc = await core.readNamespacedService({ name: "echo", namespace: "demo" });
        svc.metadata = {
          ...svc.metadata,
          annotations: { "service.cilium.io/global": "true", "service.cilium.io/shared": shared },
        };
        await core.replaceNamespacedService({ name: "echo", namespace: "demo", body: svc });
      };
      await patch("false");
      await waitFor(
        "service withdrawn when not shared",
        async () => (await value(SERVICE_KEY)) === undefined,
      );
      await patch("true");
      await waitFor("service back when shared", async () => (await value(SERVICE_KEY)) === EXPECTED_SERVICE);
      await core.deleteNamespacedService({ name: "echo", namespace: "demo" });
      await waitFor("service deleted", async () => (await value(SERVICE_KEY)) === undefined);
      await waitFor("watch events", () => events.length >= 4);
      assert.deepEqual(events, [
        "upsert demo/echo 10.1.1.5",
        "delete demo/echo",
        "upsert demo/echo 10.1.1.5",
        "delete demo/echo",
      ]);
    } finally {
      abort.abort();
      await running;
    }
  });

  it("rebuilds everything from Kubernetes after a restart with a wiped etcd", async () => {
    assert.ok(apiserver);
    await stopProcess(apiserver);
    await etcd.restart({ wipe: true });
    assert.equal((await admin.getAll().prefix("cilium/").keys()).length, 0);
    await startApiServer();
    await waitReady();
    assert.ok(await value(keys.node(CLUSTER, "node-a")));
    assert.ok(await value(keys.identity(65600)));
    assert.ok(await value(keys.ip("10.1.1.5")));
    assert.ok(await value(keys.clusterConfig(CLUSTER)));
    for (const name of Object.values(CANARY_NAMES)) assert.ok(await value(keys.canary(CLUSTER, name)), name);
    // Roles were re-created on the fresh etcd.
    await assert.rejects(etcd.client("remote").put("cilium/state/x").value("1").exec(), /permission denied/);
  });

  it("after a restart on a non-empty etcd rewrites nothing that is unchanged", async () => {
    assert.ok(apiserver);
    const before = (await admin.get(keys.node(CLUSTER, "node-a")).exec()).kvs[0]?.mod_revision;
    await stopProcess(apiserver);
    await startApiServer();
    await waitReady();
    const metrics = await (await fetch(`${readyzUrl}/metrics`)).text();
    assert.match(metrics, /kvstore_writes_total\{kind="nodes"\} 0/);
    assert.equal((await admin.get(keys.node(CLUSTER, "node-a")).exec()).kvs[0]?.mod_revision, before);
  });
});
