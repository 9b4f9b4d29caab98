import assert from "node:assert/strict";
import { request } from "node:https";
import { after, before, describe, it } from "node:test";
import {
  ApiextensionsV1Api,
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type V1ConfigMap,
  Watch,
} from "@kubernetes/client-node";
import { cidrContains, parseCidr } from "../../lib/cidr.js";
import { waitFor } from "../../lib/process.js";
import { TEST_SERVICE_RANGE, TestCluster } from "./test-cluster.js";

interface StatusBody {
  code: number;
  reason: string;
  details?: { causes?: { field?: string }[] };
}

/** Runs a client-node call that must fail; returns the Status the server sent. */
async function statusOf(call: Promise<unknown>): Promise<StatusBody> {
  try {
    await call;
  } catch (error) {
    const body = (error as { body?: unknown }).body;
    return (typeof body === "string" ? JSON.parse(body) : body) as StatusBody;
  }
  assert.fail("the call was expected to fail");
}

interface WatchEvent {
  type: string;
  object: {
    metadata?: { name?: string; resourceVersion?: string };
    code?: number;
    data?: Record<string, string>;
  };
}

describe("kube-apiserver with @kubernetes/client-node (root: starts etcd)", () => {
  const cluster = new TestCluster();
  let core: CoreV1Api;
  const ns = "t1";

  before(async () => {
    await cluster.start({ minRequestTimeoutSeconds: 1, bookmarkIntervalMs: 200 });
    core = cluster.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
  });
  after(() => cluster.stop());

  const configMap = (name: string, value = "1"): V1ConfigMap => ({ metadata: { name }, data: { value } });

  it("bootstraps namespaces and the default/kubernetes service", async () => {
    const names = (await core.listNamespace()).items.map((n) => n.metadata?.name);
    for (const name of ["default", "kube-system", "kube-public", "kube-node-lease"])
      assert.ok(names.includes(name), name);
    const svc = await core.readNamespacedService({ name: "kubernetes", namespace: "default" });
    assert.equal(svc.spec?.clusterIP, "10.96.0.1");
  });

  it("list + watch receives every change in order", async () => {
    const list = await core.listNamespacedConfigMap({ namespace: ns });
    const events: WatchEvent[] = [];
    const watch = new Watch(cluster.kubeConfig());
    const controller = await watch.watch(
      `/api/v1/namespaces/${ns}/configmaps`,
      { resourceVersion: list.metadata?.resourceVersion },
      (type, object) => events.push({ type, object }),
      () => {},
    );
    try {
      for (let i = 0; i < 5; i++)
        await core.createNamespacedConfigMap({ namespace: ns, body: configMap(`cm-${i}`) });
      await core.replaceNamespacedConfigMap({ name: "cm-2", namespace: ns, body: configMap("cm-2", "2") });
      await core.patchNamespacedConfigMap(
        { name: "cm-3", namespace: ns, body: { data: { value: "3" } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      );
      await core.deleteNamespacedConfigMap({ name: "cm-0", namespace: ns });
      await waitFor("8 watch events", () => events.length >= 8, { timeoutMs: 5_000 });
      assert.deepEqual(
        events.map((e) => `${e.type} ${e.object.metadata?.name}`),
        [
          "ADDED cm-0",
          "ADDED cm-1",
          "ADDED cm-2",
          "ADDED cm-3",
          "ADDED cm-4",
          "MODIFIED cm-2",
          "MODIFIED cm-3",
          "DELETED cm-0",
        ],
      );
      const versions = events.map((e) => Number(e.object.metadata?.resourceVersion));
      assert.deepEqual(
        [...versions].sort((a, b) => a - b),
        versions,
        "resourceVersions increase",
      );
      assert.equal(events[5].object.data?.value, "2");
    } finally {
      controller.abort();
    }
  });

  it("a watch from a compacted version gets 410, and an informer recovers by relisting", async () => {
    const informerNs = "informer";
    await core.createNamespace({ body: { metadata: { name: informerNs } } });
    let lists = 0;
    const informer = makeInformer(cluster.kubeConfig(), `/api/v1/namespaces/${informerNs}/configmaps`, () => {
      lists++;
      return core.listNamespacedConfigMap({ namespace: informerNs });
    });
    // client-node's documented pattern: restart the informer after an error (until the test stops it).
    let stopped = false;
    informer.on("error", () => {
      // a restart that fails is not lost: the waitFor below then fails with its own message
      if (!stopped) setTimeout(() => informer.start().catch(() => {}), 100);
    });
    await informer.start();
    try {
      await core.createNamespacedConfigMap({ namespace: informerNs, body: configMap("before") });
      await waitFor("the informer to see 'before'", () => informer.get("before", informerNs) !== undefined);
      const oldVersion = (await core.listNamespacedConfigMap({ namespace: informerNs })).metadata
        ?.resourceVersion;
      // Advance etcd past the informer's version with writes it does not watch, then compact.
      for (let i = 0; i < 3; i++)
        await core.createNamespacedSecret({ namespace: informerNs, body: { metadata: { name: `s${i}` } } });
      const etcd = cluster.etcdClient();
      try {
        const revision = (await etcd.get("probe").exec()).header.revision;
        await etcd.kv.compact({ revision, physical: true });
      } finally {
        etcd.close();
      }

      const events: WatchEvent[] = [];
      const controller = await new Watch(cluster.kubeConfig()).watch(
        `/api/v1/namespaces/${informerNs}/configmaps`,
        { resourceVersion: oldVersion },
        (type, object) => events.push({ type, object }),
        () => {},
      );
      await waitFor("an ERROR event", () => events.length > 0, { timeoutMs: 5_000 });
      controller.abort();
      assert.equal(events[0].type, "ERROR");
      assert.equal(events[0].object.code, 410);

      // The server closes the informer's watch within 1-2 s; its re-watch from the compacted version
      // gets 410, so it lists again and carries on.
      await waitFor("the informer to relist", () => lists >= 2, { timeoutMs: 8_000 });
      await core.createNamespacedConfigMap({ namespace: informerNs, body: configMap("after") });
      await waitFor("the informer to see 'after'", () => informer.get("after", informerNs) !== undefined, {
        timeoutMs: 5_000,
      });
    } finally {
      stopped = true;
      await informer.stop();
    }
  });

  it("sends BOOKMARK events when asked", async () => {
    const version = (await core.listNamespacedConfigMap({ namespace: ns })).metadata?.resourceVersion;
    const events: WatchEvent[] = [];
    const controller = await new Watch(cluster.kubeConfig()).watch(
      `/api/v1/namespaces/${ns}/configmaps`,
      { allowWatchBookmarks: true, resourceVersion: version },
      (type, object) => events.push({ type, object }),
      () => {},
    );
    try {
      await waitFor("a bookmark", () => events.some((e) => e.type === "BOOKMARK"), { timeoutMs: 3_000 });
      const bookmark = events.find((e) => e.type === "BOOKMARK");
      assert.equal(bookmark?.object.metadata?.resourceVersion, version);
    } finally {
      controller.abort();
    }
  });

  it("concurrent updates from the same version: one wins, the other gets 409 Conflict", async () => {
    const current = await core.createNamespacedConfigMap({ namespace: ns, body: configMap("race") });
    const results = await Promise.allSettled(
      ["a", "b"].map((v) =>
        core.replaceNamespacedConfigMap({
          name: "race",
          namespace: ns,
          body: { ...current, data: { value: v } },
        }),
      ),
    );
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 1);
    const rejected = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    const body = JSON.parse(rejected.reason.body) as StatusBody;
    assert.equal(body.code, 409);
    assert.equal(body.reason, "Conflict");
  });

  it("allocates unique ClusterIPs inside the service range, releases them, honours requests", async () => {
    const range = parseCidr(TEST_SERVICE_RANGE);
    const created = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        core.createNamespacedService({
          namespace: ns,
          body: { metadata: { name: `svc-${i}` }, spec: { ports: [{ port: 80 }] } },
        }),
      ),
    );
    const ips = created.map((s) => s.spec?.clusterIP ?? "");
    assert.equal(new Set(ips).size, 20, "unique");
    for (const ip of ips) assert.ok(cidrContains(range, ip), `${ip} inside ${TEST_SERVICE_RANGE}`);
    assert.ok(!ips.includes("10.96.0.1"), "the kubernetes service keeps its address");

    const taken = await statusOf(
      core.createNamespacedService({
        namespace: ns,
        body: { metadata: { name: "dup" }, spec: { clusterIP: ips[0], ports: [{ port: 80 }] } },
      }),
    );
    assert.equal(taken.code, 422);
    const outside = await statusOf(
      core.createNamespacedService({
        namespace: ns,
        body: { metadata: { name: "out" }, spec: { clusterIP: "10.0.0.5", ports: [{ port: 80 }] } },
      }),
    );
    assert.equal(outside.code, 422);
    assert.equal(outside.details?.causes?.[0]?.field, "spec.clusterIPs");

    await core.deleteNamespacedService({ name: "svc-0", namespace: ns });
    const reused = await core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: "reuse" }, spec: { clusterIP: ips[0], ports: [{ port: 80 }] } },
    });
    assert.equal(reused.spec?.clusterIP, ips[0], "a deleted service's address is free again");

    const headless = await core.createNamespacedService({
      namespace: ns,
      body: { metadata: { name: "headless" }, spec: { clusterIP: "None", selector: { app: "x" } } },
    });
    assert.equal(headless.spec?.clusterIP, "None");
    const nodePort = await core.createNamespacedService({
      namespace: ns,
      body: {
        metadata: { name: "np" },
        spec: {
          type: "NodePort",
          ports: [{ port: 80 }, { port: 81, name: "b", nodePort: 31000 }].map((p, i) => ({
            name: `p${i}`,
            ...p,
          })),
        },
      },
    });
    const ports = nodePort.spec?.ports?.map((p) => p.nodePort ?? 0) ?? [];
    assert.ok(ports[0] >= 30000 && ports[0] <= 32767);
    assert.equal(ports[1], 31000);
  });

  it("serves CRDs and their custom resources (namespaced with status, cluster-scoped), with watch", async () => {
    const ext = cluster.kubeConfig().makeApiClient(ApiextensionsV1Api);
    const custom = cluster.kubeConfig().makeApiClient(CustomObjectsApi);
    const schema = {
      openAPIV3Schema: {
        type: "object",
        properties: {
          spec: { type: "object", required: ["size"], properties: { size: { type: "integer", minimum: 1 } } },
          status: { type: "object", properties: { ready: { type: "boolean" } } },
        },
      },
    };
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name: "widgets.mesh.example.io" },
        spec: {
          group: "mesh.example.io",
          scope: "Namespaced",
          names: { plural: "widgets", singular: "widget", kind: "Widget", shortNames: ["wg"] },
          versions: [{ name: "v1", served: true, storage: true, schema, subresources: { status: {} } }],
        },
      },
    });
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name: "peers.mesh.example.io" },
        spec: {
          group: "mesh.example.io",
          scope: "Cluster",
          names: { plural: "peers", kind: "Peer" },
          versions: [
            {
              name: "v1alpha1",
              served: true,
              storage: true,
              schema: { openAPIV3Schema: { type: "object", x_kubernetes_preserve_unknown_fields: true } },
            },
          ],
        },
      },
    });
    const crd = await ext.readCustomResourceDefinition({ name: "widgets.mesh.example.io" });
    assert.ok(crd.status?.conditions?.some((c) => c.type === "Established" && c.status === "True"));

    const g = { group: "mesh.example.io", version: "v1", namespace: ns, plural: "widgets" };
    const events: WatchEvent[] = [];
    const controller = await new Watch(cluster.kubeConfig()).watch(
      `/apis/mesh.example.io/v1/namespaces/${ns}/widgets`,
      {},
      (type, object) => events.push({ type, object }),
      () => {},
    );
    try {
      const created = (await custom.createNamespacedCustomObject({
        ...g,
        body: {
          apiVersion: "mesh.example.io/v1",
          kind: "Widget",
          metadata: { name: "w1" },
          spec: { size: 1 },
          status: { ready: true },
        },
      })) as { metadata: { generation: number }; status?: unknown };
      assert.equal(created.status, undefined, "status is the status subresource's to set");
      const invalidSize = await statusOf(
        custom.createNamespacedCustomObject({
          ...g,
          body: {
            apiVersion: "mesh.example.io/v1",
            kind: "Widget",
            metadata: { name: "w2" },
            spec: { size: 0 },
          },
        }),
      );
      assert.equal(invalidSize.code, 422);
      assert.equal(invalidSize.details?.causes?.[0]?.field, "spec.size");

      const patched = (await custom.patchNamespacedCustomObject(
        { ...g, name: "w1", body: { spec: { size: 3 } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      )) as { metadata: { generation: number }; spec: { size: number } };
      assert.equal(patched.spec.size, 3);
      assert.equal(patched.metadata.generation, 2, "spec changes bump generation");
      const withStatus = (await custom.patchNamespacedCustomObjectStatus(
        { ...g, name: "w1", body: { status: { ready: true } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      )) as { metadata: { generation: number }; status: { ready: boolean } };
      assert.equal(withStatus.status.ready, true);
      assert.equal(withStatus.metadata.generation, 2, "status changes do not");
      const listed = (await custom.listNamespacedCustomObject(g)) as { items: unknown[] };
      assert.equal(listed.items.length, 1);

      const peer = (await custom.createClusterCustomObject({
        group: "mesh.example.io",
        version: "v1alpha1",
        plural: "peers",
        body: {
          apiVersion: "mesh.example.io/v1alpha1",
          kind: "Peer",
          metadata: { name: "c2" },
          spec: { anything: ["goes"] },
        },
      })) as { metadata: { namespace?: string } };
      assert.equal(peer.metadata.namespace, undefined);

      await custom.deleteNamespacedCustomObject({ ...g, name: "w1" });
      await waitFor("widget watch events", () => events.length >= 4, { timeoutMs: 5_000 });
      assert.deepEqual(
        events.map((e) => e.type),
        ["ADDED", "MODIFIED", "MODIFIED", "DELETED"],
      );
    } finally {
      controller.abort();
    }

    await ext.deleteCustomResourceDefinition({ name: "peers.mesh.example.io" });
    const gone = await statusOf(
      custom.listClusterCustomObject({ group: "mesh.example.io", version: "v1alpha1", plural: "peers" }),
    );
    assert.equal(gone.code, 404, "deleting a CRD stops serving its resources");
  });

  it("answers bad requests with Status errors: 422, 404, 400, 409, 401, 403", async () => {
    const invalidPod = await statusOf(
      core.createNamespacedPod({
        namespace: ns,
        body: { metadata: { name: "bad" }, spec: { containers: [{ name: "c", image: "" }] } },
      }),
    );
    assert.equal(invalidPod.code, 422);
    assert.equal(invalidPod.reason, "Invalid");
    assert.equal(invalidPod.details?.causes?.[0]?.field, "spec.containers[0].image");

    const missing = await statusOf(core.readNamespacedConfigMap({ name: "nope", namespace: ns }));
    assert.equal(missing.code, 404);
    assert.equal(missing.reason, "NotFound");
    const unknown = await rawRequest(cluster, "GET", "/apis/nothing.example.io/v1/things");
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.reason, "NotFound");

    await core.createNamespacedConfigMap({ namespace: ns, body: configMap("patchme") });
    const badPatch = await statusOf(
      core.patchNamespacedConfigMap(
        { name: "patchme", namespace: ns, body: [{ op: "test", path: "/data/value", value: "no" }] },
        setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
      ),
    );
    assert.equal(badPatch.code, 400);
    assert.equal(badPatch.reason, "BadRequest");

    const exists = await statusOf(
      core.createNamespacedConfigMap({ namespace: ns, body: configMap("patchme") }),
    );
    assert.equal(exists.code, 409);
    assert.equal(exists.reason, "AlreadyExists");

    const noNamespace = await statusOf(
      core.createNamespacedConfigMap({ namespace: "absent", body: configMap("x") }),
    );
    assert.equal(noNamespace.code, 404);

    const anonymous = await rawRequest(cluster, "GET", "/api/v1/namespaces", { anonymous: true });
    assert.equal(anonymous.status, 401);
    const token = await rawRequest(cluster, "GET", "/api/v1/namespaces", { anonymous: true, token: "wrong" });
    assert.equal(token.status, 401);
    const forbidden = await statusOf(core.deleteNamespace({ name: "kube-system" }));
    assert.equal(forbidden.code, 403);
  });

  it("keeps uid, generateName, generation; deletes gracefully with finalizers and pod grace periods", async () => {
    const generated = await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { generateName: "gen-" } },
    });
    assert.match(generated.metadata?.name ?? "", /^gen-[a-z0-9]{5}$/);
    assert.ok(generated.metadata?.uid);

    await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: "fin", finalizers: ["example.io/hold"] } },
    });
    await core.deleteNamespacedConfigMap({ name: "fin", namespace: ns });
    const held = await core.readNamespacedConfigMap({ name: "fin", namespace: ns });
    assert.ok(held.metadata?.deletionTimestamp, "a finalizer keeps the object, marked for deletion");
    await core.patchNamespacedConfigMap(
      { name: "fin", namespace: ns, body: { metadata: { finalizers: null } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    assert.equal((await statusOf(core.readNamespacedConfigMap({ name: "fin", namespace: ns }))).code, 404);

    await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: "runner" }, spec: { containers: [{ name: "c", image: "busybox" }] } },
    });
    await core.createNamespacedPodBinding({
      name: "runner",
      namespace: ns,
      body: { metadata: { name: "runner" }, target: { kind: "Node", name: "node-a" } },
    });
    const bound = await core.readNamespacedPod({ name: "runner", namespace: ns });
    assert.equal(bound.spec?.nodeName, "node-a");
    const rebind = await statusOf(
      core.createNamespacedPodBinding({
        name: "runner",
        namespace: ns,
        body: { metadata: { name: "runner" }, target: { name: "node-b" } },
      }),
    );
    assert.equal(rebind.code, 409);
    await core.deleteNamespacedPod({ name: "runner", namespace: ns });
    const terminating = await core.readNamespacedPod({ name: "runner", namespace: ns });
    assert.ok(terminating.metadata?.deletionTimestamp, "a scheduled pod waits for its kubelet");
    assert.equal(terminating.metadata?.deletionGracePeriodSeconds, 30);
    await core.deleteNamespacedPod({ name: "runner", namespace: ns, gracePeriodSeconds: 0 });
    assert.equal((await statusOf(core.readNamespacedPod({ name: "runner", namespace: ns }))).code, 404);

    const apps = cluster.kubeConfig().makeApiClient(AppsV1Api);
    const deployment = {
      metadata: { name: "d1" },
      spec: {
        selector: { matchLabels: { app: "d1" } },
        template: {
          metadata: { labels: { app: "d1" } },
          spec: { containers: [{ name: "c", image: "x:1" }] },
        },
      },
    };
    const created = await apps.createNamespacedDeployment({ namespace: ns, body: deployment });
    assert.equal(created.metadata?.generation, 1);
    assert.equal(created.spec?.replicas, 1, "defaulted");
    const labelled = await apps.patchNamespacedDeployment(
      { name: "d1", namespace: ns, body: { metadata: { labels: { x: "y" } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    assert.equal(labelled.metadata?.generation, 1, "metadata changes keep generation");
    const scaled = await apps.replaceNamespacedDeploymentScale({
      name: "d1",
      namespace: ns,
      body: { metadata: { name: "d1", namespace: ns }, spec: { replicas: 4 } },
    });
    assert.equal(scaled.spec?.replicas, 4);
    assert.equal(
      (await apps.readNamespacedDeployment({ name: "d1", namespace: ns })).metadata?.generation,
      2,
    );
    const mismatch = await statusOf(
      apps.createNamespacedDeployment({
        namespace: ns,
        body: {
          ...deployment,
          metadata: { name: "d2" },
          spec: { ...deployment.spec, selector: { matchLabels: { app: "other" } } },
        },
      }),
    );
    assert.equal(mismatch.code, 422);
    assert.equal(mismatch.details?.causes?.[0]?.field, "spec.template.metadata.labels");
  });

  it("filters lists by label and field selectors", async () => {
    const sel = "selectors";
    await core.createNamespace({ body: { metadata: { name: sel } } });
    const labels: Record<string, string>[] = [
      { app: "a", tier: "web" },
      { app: "b", tier: "db" },
      { app: "c" },
    ];
    for (const [i, l] of labels.entries())
      await core.createNamespacedConfigMap({
        namespace: sel,
        body: { metadata: { name: `l${i}`, labels: l } },
      });
    const names = async (labelSelector?: string, fieldSelector?: string) =>
      (await core.listNamespacedConfigMap({ namespace: sel, labelSelector, fieldSelector })).items.map(
        (c) => c.metadata?.name,
      );
    assert.deepEqual(await names("app in (a,b)"), ["l0", "l1"]);
    assert.deepEqual(await names("app notin (a),tier"), ["l1"]);
    assert.deepEqual(await names("!tier"), ["l2"]);
    assert.deepEqual(await names(undefined, "metadata.name=l1"), ["l1"]);
    assert.deepEqual(await names(undefined, "metadata.name!=l1,metadata.namespace=selectors"), ["l0", "l2"]);
    const bad = await rawRequest(
      cluster,
      "GET",
      `/api/v1/namespaces/${sel}/configmaps?labelSelector=${encodeURIComponent("app in (a")}`,
    );
    assert.equal(bad.status, 400);
  });

  it("keeps its data across a restart of the server", async () => {
    const before = await core.createNamespacedConfigMap({
      namespace: ns,
      body: configMap("persist", "kept"),
    });
    await cluster.stopServer();
    await cluster.startServer({ minRequestTimeoutSeconds: 1 });
    const after = await core.readNamespacedConfigMap({ name: "persist", namespace: ns });
    assert.equal(after.data?.value, "kept");
    assert.equal(after.metadata?.resourceVersion, before.metadata?.resourceVersion);
    assert.equal(after.metadata?.uid, before.metadata?.uid);
  });
});

/** A request without client-node: for paths it has no method for and for unauthenticated calls. */
function rawRequest(
  cluster: TestCluster,
  method: string,
  path: string,
  { anonymous = false, token }: { anonymous?: boolean; token?: string } = {},
): Promise<{ status: number; body: { reason?: string } }> {
  const url = new URL(path, cluster.server?.url);
  const pki = cluster.pki;
  return new Promise((resolve, reject) => {
    import("node:fs").then(({ readFileSync }) => {
      const req = request(
        url,
        {
          method,
          ca: readFileSync(pki.ca.cert),
          ...(anonymous ? {} : { cert: readFileSync(pki.admin.cert), key: readFileSync(pki.admin.key) }),
          headers: token ? { Authorization: `Bearer ${token}` } : {},
        },
        (res) => {
          let text = "";
          res.on("data", (c) => {
            text += c;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : {} }));
        },
      );
      req.on("error", reject);
      req.end();
    }, reject);
  });
}
