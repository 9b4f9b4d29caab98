import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  AppsV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1Node,
  type V1Pod,
} from "@kubernetes/client-node";
import { silentLogger } from "../../lib/log.js";
import { WaitAborted, waitFor } from "../../lib/process.js";
import { type ControllerManager, startControllerManager } from "./manager.js";
import { ipamConfig } from "./node-ipam.js";
import { LabApi } from "./test-cluster.js";

/** The controllers against the real lab API server (etcd-backed, in-process); nodes are API objects only. */
describe("lab controllers against the lab API server (root: starts etcd)", { timeout: 90_000 }, () => {
  const lab = new LabApi();
  let manager: ControllerManager | undefined;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let discovery: DiscoveryV1Api;

  const node = (name: string, labels: Record<string, string>, controlPlane = false): V1Node => ({
    metadata: { name, labels: { "kubernetes.io/hostname": name, ...labels } },
    spec: controlPlane
      ? { taints: [{ key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" }] }
      : {},
  });

  async function markReady(name: string): Promise<void> {
    const current = await core.readNode({ name });
    await core.replaceNodeStatus({
      name,
      body: {
        ...current,
        status: {
          conditions: [{ type: "Ready", status: "True" }],
          addresses: [{ type: "InternalIP", address: "192.0.2.1" }],
        },
      },
    });
  }

  /** As a kubelet would: read, write status, and retry when the scheduler's binding got in between (409). */
  async function setPodReady(pod: V1Pod, ip: string, ready: boolean): Promise<void> {
    await waitFor(`status of ${pod.metadata?.name} written`, async () => {
      try {
        await writePodReady(pod, ip, ready);
        return true;
      } catch (error) {
        if ((error as { code?: number }).code === 409) return undefined;
        throw new WaitAborted(String(error), { cause: error });
      }
    });
  }

  async function writePodReady(pod: V1Pod, ip: string, ready: boolean): Promise<void> {
    const current = await core.readNamespacedPod({ name: pod.metadata?.name ?? "", namespace: "default" });
    await core.replaceNamespacedPodStatus({
      name: pod.metadata?.name ?? "",
      namespace: "default",
      body: {
        ...current,
        status: {
          phase: "Running",
          podIP: ip,
          podIPs: [{ ip }],
          conditions: [{ type: "Ready", status: ready ? "True" : "False" }],
        },
      },
    });
  }

  before(async () => {
    await lab.start();
    const admin = lab.kubeConfig("admin", lab.pki.admin);
    core = admin.makeApiClient(CoreV1Api);
    apps = admin.makeApiClient(AppsV1Api);
    discovery = admin.makeApiClient(DiscoveryV1Api);
    for (const n of [node("cp", {}, true), node("w1", { zone: "a" }), node("w2", { zone: "b" })]) {
      await core.createNode({ body: n });
      await markReady(n.metadata?.name ?? "");
    }
    manager = await startControllerManager({
      kubeConfig: lab.kubeConfig("controller-manager", lab.pki.controllerManager),
      clusterName: "test",
      ipam: ipamConfig("10.244.0.0/16", 24),
      log: silentLogger(),
    });
  });

  after(async () => {
    await manager?.stop();
    await lab.stop();
  });

  it("allocates a distinct pod CIDR to every node", async () => {
    const cidrs = await waitFor("pod CIDRs on all nodes", async () => {
      const { items } = await core.listNode();
      const all = items.map((n) => n.spec?.podCIDR);
      return all.every(Boolean) ? all : undefined;
    });
    assert.equal(new Set(cidrs).size, 3);
    for (const cidr of cidrs) assert.match(cidr ?? "", /^10\.244\.\d+\.0\/24$/);
  });

  it("schedules with nodeSelector, away from the tainted control plane", async () => {
    await core.createNamespacedPod({
      namespace: "default",
      body: {
        metadata: { name: "pinned" },
        spec: { nodeSelector: { zone: "b" }, containers: [{ name: "c", image: "clustermesh/client" }] },
      },
    });
    for (const name of ["free-1", "free-2"]) {
      await core.createNamespacedPod({
        namespace: "default",
        body: { metadata: { name }, spec: { containers: [{ name: "c", image: "clustermesh/client" }] } },
      });
    }
    const placed = await waitFor("pods bound", async () => {
      const { items } = await core.listNamespacedPod({ namespace: "default" });
      const byName = Object.fromEntries(items.map((p) => [p.metadata?.name, p.spec?.nodeName]));
      return ["pinned", "free-1", "free-2"].every((n) => byName[n]) ? byName : undefined;
    });
    assert.equal(placed.pinned, "w2");
    assert.notEqual(placed["free-1"], "cp");
    assert.notEqual(placed["free-2"], "cp");
    // Fewest pods first: with "pinned" on w2, the two free pods cannot both avoid w1, but the
    // workers' counts never differ by more than one.
    const perNode = new Map<string, number>();
    for (const name of ["pinned", "free-1", "free-2"])
      perNode.set(placed[name], (perNode.get(placed[name]) ?? 0) + 1);
    const counts = [...perNode.values()];
    assert.ok(
      Math.max(...counts) - Math.min(...counts) <= 1 && perNode.size === 2,
      `spread: ${JSON.stringify([...perNode])}`,
    );
    for (const name of ["pinned", "free-1", "free-2"]) {
      await core.deleteNamespacedPod({ name, namespace: "default", gracePeriodSeconds: 0 });
    }
  });

  it("scales a Deployment up and down, keeps EndpointSlices in step with readiness, and GCs its pods", async () => {
    const labels = { app: "web" };
    await apps.createNamespacedDeployment({
      namespace: "default",
      body: {
        metadata: { name: "web" },
        spec: {
          replicas: 3,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              containers: [
                { name: "web", image: "clustermesh/echo", ports: [{ name: "http", containerPort: 8080 }] },
              ],
            },
          },
        },
      },
    });
    await core.createNamespacedService({
      namespace: "default",
      body: {
        metadata: { name: "web" },
        spec: {
          selector: labels,
          ports: [{ name: "http", port: 80, targetPort: "http" as unknown as number }],
        },
      },
    });
    const webPods = async () =>
      (await core.listNamespacedPod({ namespace: "default", labelSelector: "app=web" })).items.filter(
        (p) => !p.metadata?.deletionTimestamp,
      );
    const pods = await waitFor("3 pods", async () => {
      const items = await webPods();
      return items.length === 3 ? items : undefined;
    });
    for (const pod of pods) assert.ok(pod.metadata?.labels?.["pod-template-hash"]);
    // Readiness drives the slice: two ready, one not.
    await setPodReady(pods[0], "10.244.1.10", true);
    await setPodReady(pods[1], "10.244.1.11", true);
    await setPodReady(pods[2], "10.244.2.12", false);
    const slice = await waitFor("EndpointSlice with 3 endpoints", async () => {
      const { items } = await discovery.listNamespacedEndpointSlice({
        namespace: "default",
        labelSelector: "kubernetes.io/service-name=web",
      });
      const s = items[0];
      return s?.endpoints?.length === 3 ? s : undefined;
    });
    assert.deepEqual(JSON.parse(JSON.stringify(slice.ports)), [
      { name: "http", port: 8080, protocol: "TCP" },
    ]);
    const readyByIp = Object.fromEntries(slice.endpoints.map((e) => [e.addresses[0], e.conditions?.ready]));
    assert.deepEqual(readyByIp, { "10.244.1.10": true, "10.244.1.11": true, "10.244.2.12": false });
    await setPodReady(pods[2], "10.244.2.12", true);
    await waitFor("third endpoint ready", async () => {
      const { items } = await discovery.listNamespacedEndpointSlice({
        namespace: "default",
        labelSelector: "kubernetes.io/service-name=web",
      });
      return items[0]?.endpoints.every((e) => e.conditions?.ready) || undefined;
    });
    const status = await waitFor("deployment status 3/3 ready", async () => {
      const d = await apps.readNamespacedDeployment({ name: "web", namespace: "default" });
      return d.status?.readyReplicas === 3 && d.status.updatedReplicas === 3 ? d.status : undefined;
    });
    assert.equal(status.availableReplicas, 3);
    assert.equal(status.observedGeneration, 1);

    // Scale down to 1 (what kubectl scale sends).
    await apps.patchNamespacedDeployment(
      { name: "web", namespace: "default", body: { spec: { replicas: 1 } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    await waitFor("1 pod left", async () => (await webPods()).length === 1 || undefined, {
      timeoutMs: 10_000,
    });
    await waitFor("slice shrinks to 1 endpoint", async () => {
      const { items } = await discovery.listNamespacedEndpointSlice({
        namespace: "default",
        labelSelector: "kubernetes.io/service-name=web",
      });
      // Deleted pods stay as terminating endpoints until their kubelet (absent here) confirms.
      return items[0]?.endpoints.filter((e) => !e.conditions?.terminating).length === 1 || undefined;
    });

    // Deleting the Deployment garbage-collects its pods.
    await apps.deleteNamespacedDeployment({ name: "web", namespace: "default" });
    await waitFor("pods garbage-collected", async () => (await webPods()).length === 0 || undefined, {
      timeoutMs: 10_000,
    });
  });
});
