import { randomBytes } from "node:crypto";
import {
  AppsV1Api,
  CoreV1Api,
  DiscoveryV1Api,
  type KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type V1Deployment,
  type V1EndpointSlice,
  type V1Node,
  type V1Pod,
  type V1Service,
} from "@kubernetes/client-node";
import { apiStatus } from "../../lib/k8s/client.js";
import { type Informer, startInformer } from "../../lib/k8s/informer.js";
import type { Logger } from "../../lib/log.js";
import { Trigger } from "../../lib/trigger.js";
import { orphanedPods, planDeployment, podFromTemplate, statusChanged } from "./deployments.js";
import { planEndpointSlices } from "./endpointslices.js";
import { allocateNodeCidrs, type IpamConfig, nodePodCidrs } from "./node-ipam.js";
import { schedule } from "./scheduler.js";

/**
 * Wires the pure controller decisions to the API: one set of watch caches, one level-triggered
 * reconcile per controller (coalesced), each reading the caches and writing through the API.
 */

export interface ControllerManagerOptions {
  kubeConfig: KubeConfig;
  clusterName: string;
  ipam: IpamConfig;
  log: Logger;
}

export interface ControllerManager {
  stop(): Promise<void>;
}

const EXPECTATION_TTL_MS = 30_000;

/** Writes this process made that its caches have not reflected yet (upstream's "expectations"). */
class Expectations {
  private readonly entries = new Map<string, Map<string, number>>();

  add(scope: string, name: string): void {
    const scoped = this.entries.get(scope) ?? new Map<string, number>();
    scoped.set(name, Date.now() + EXPECTATION_TTL_MS);
    this.entries.set(scope, scoped);
  }

  /** Drops entries the cache now reflects (per `seen`) or that expired; returns what is left. */
  pending(scope: string, seen: (name: string) => boolean): string[] {
    const scoped = this.entries.get(scope);
    if (!scoped) return [];
    const now = Date.now();
    for (const [name, expiry] of scoped) if (seen(name) || expiry < now) scoped.delete(name);
    return [...scoped.keys()];
  }
}

function key(obj: { metadata?: { namespace?: string; name?: string } }): string {
  return `${obj.metadata?.namespace ?? ""}/${obj.metadata?.name ?? ""}`;
}

export async function startControllerManager(options: ControllerManagerOptions): Promise<ControllerManager> {
  const { kubeConfig, log } = options;
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const apps = kubeConfig.makeApiClient(AppsV1Api);
  const discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
  const mergePatch = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

  const triggers: Trigger[] = [];
  const controller = (name: string, work: () => Promise<void>) => {
    const trigger = new Trigger(name, work, log.child({ controller: name }), 20);
    triggers.push(trigger);
    return trigger;
  };

  // --- node IPAM -------------------------------------------------------------------------------
  const reservedCidrs = new Map<string, string[]>();
  let nodes: Informer<V1Node>;
  const nodeIpam = controller("node-ipam", async () => {
    if (!nodes.synced()) return;
    const current = nodes.list().map((n) => ({ name: n.metadata?.name ?? "", podCIDRs: nodePodCidrs(n) }));
    for (const node of current) if (node.podCIDRs.length > 0) reservedCidrs.delete(node.name);
    for (const name of reservedCidrs.keys())
      if (!current.some((n) => n.name === name)) reservedCidrs.delete(name);
    const allocations = allocateNodeCidrs(current, options.ipam, reservedCidrs);
    // Reserve before writing so a concurrent pass can never pick the same CIDR.
    for (const [name, cidrs] of allocations) reservedCidrs.set(name, cidrs);
    for (const [name, cidrs] of allocations) {
      await core.patchNode({ name, body: { spec: { podCIDR: cidrs[0], podCIDRs: cidrs } } }, mergePatch);
      log.info({ node: name, podCIDRs: cidrs }, "allocated pod CIDRs");
    }
  });

  // --- scheduler -------------------------------------------------------------------------------
  let pods: Informer<V1Pod>;
  const bound = new Expectations();
  const assumed = new Map<string, string>();
  const reportedUnschedulable = new Map<string, string>();
  const scheduler = controller("scheduler", async () => {
    if (!nodes.synced() || !pods.synced()) return;
    const inFlight = new Set(
      bound.pending("bind", (k) => Boolean(pods.list().find((p) => key(p) === k)?.spec?.nodeName)),
    );
    // Pods bound but not yet seen bound count on their node (kube-scheduler's "assumed pods"),
    // so two pods created together spread instead of both landing on the emptiest node.
    const candidates = pods
      .list()
      .map((p) =>
        inFlight.has(key(p)) ? { ...p, spec: { ...p.spec, nodeName: assumed.get(key(p)) } } : p,
      ) as V1Pod[];
    const plan = schedule(candidates, nodes.list());
    log.debug(
      {
        pods: candidates.length,
        nodes: nodes.list().length,
        bindings: plan.bindings.length,
        unschedulable: plan.unschedulable,
      },
      "scheduling pass",
    );
    for (const binding of plan.bindings) {
      bound.add("bind", `${binding.namespace}/${binding.pod}`);
      assumed.set(`${binding.namespace}/${binding.pod}`, binding.node);
      try {
        await core.createNamespacedPodBinding({
          name: binding.pod,
          namespace: binding.namespace,
          body: {
            apiVersion: "v1",
            kind: "Binding",
            metadata: { name: binding.pod, namespace: binding.namespace },
            target: { apiVersion: "v1", kind: "Node", name: binding.node },
          },
        });
        log.info(binding, "bound pod");
      } catch (error) {
        // 409: someone else bound it, or it is gone (404): nothing to do either way.
        log.debug({ binding, code: apiStatus(error), err: String(error).slice(0, 300) }, "binding refused");
        if (apiStatus(error) !== 409 && apiStatus(error) !== 404) throw error;
      }
    }
    for (const item of plan.unschedulable) {
      const k = `${item.namespace}/${item.pod}`;
      if (reportedUnschedulable.get(k) === item.message) continue;
      const pod = pods.get(item.pod, item.namespace);
      if (!pod) continue;
      const conditions = (pod.status?.conditions ?? []).filter((c) => c.type !== "PodScheduled");
      conditions.push({
        type: "PodScheduled",
        status: "False",
        reason: "Unschedulable",
        message: item.message,
        lastTransitionTime: new Date(),
      });
      try {
        await core.replaceNamespacedPodStatus({
          name: item.pod,
          namespace: item.namespace,
          body: { ...pod, status: { ...(pod.status ?? {}), phase: "Pending", conditions } },
        });
        reportedUnschedulable.set(k, item.message);
      } catch (error) {
        if (apiStatus(error) !== 409 && apiStatus(error) !== 404) throw error;
      }
    }
  });

  // --- EndpointSlices ----------------------------------------------------------------------------
  let services: Informer<V1Service>;
  let slices: Informer<V1EndpointSlice>;
  const endpointSlices = controller("endpointslice", async () => {
    if (!services.synced() || !pods.synced() || !slices.synced()) return;
    const plan = planEndpointSlices(services.list(), pods.list(), slices.list());
    for (const slice of plan.create) {
      try {
        await discovery.createNamespacedEndpointSlice({
          namespace: slice.metadata?.namespace ?? "default",
          body: slice,
        });
      } catch (error) {
        if (apiStatus(error) !== 409) throw error; // already there: the next pass updates it
      }
    }
    for (const slice of plan.update) {
      await discovery.replaceNamespacedEndpointSlice({
        name: slice.metadata?.name ?? "",
        namespace: slice.metadata?.namespace ?? "default",
        body: slice,
      });
    }
    for (const target of plan.delete) {
      try {
        await discovery.deleteNamespacedEndpointSlice(target);
      } catch (error) {
        if (apiStatus(error) !== 404) throw error;
      }
    }
  });

  // --- Deployments + garbage collection ------------------------------------------------------------
  let deployments: Informer<V1Deployment>;
  const created = new Expectations();
  const deleted = new Expectations();
  const deploymentController = controller("deployment", async () => {
    if (!deployments.synced() || !pods.synced()) return;
    const allPods = pods.list();
    const podByKey = new Map(allPods.map((p) => [key(p), p]));
    for (const deployment of deployments.list()) {
      const scope = deployment.metadata?.uid ?? key(deployment);
      const namespace = deployment.metadata?.namespace ?? "default";
      const pendingCreates = created.pending(scope, (k) => podByKey.has(k)).length;
      const pendingDeletes = new Set(
        deleted.pending(scope, (k) => {
          const pod = podByKey.get(k);
          return !pod || Boolean(pod.metadata?.deletionTimestamp);
        }),
      );
      const visible = allPods.filter((p) => !pendingDeletes.has(key(p)));
      const plan = planDeployment(deployment, visible, pendingCreates);
      for (let i = 0; i < plan.create; i++) {
        const pod = podFromTemplate(deployment, randomBytes(3).toString("hex").slice(0, 5));
        created.add(scope, key(pod));
        try {
          await core.createNamespacedPod({ namespace, body: pod });
        } catch (error) {
          created.pending(scope, (k) => k === key(pod));
          throw error;
        }
      }
      for (const name of plan.delete) {
        deleted.add(scope, `${namespace}/${name}`);
        try {
          await core.deleteNamespacedPod({ name, namespace });
        } catch (error) {
          if (apiStatus(error) !== 404) throw error;
        }
      }
      if (plan.create || plan.delete.length) {
        log.info(
          { deployment: key(deployment), created: plan.create, deleted: plan.delete },
          "scaled deployment",
        );
      }
      if (statusChanged(deployment.status, plan.status)) {
        const now = new Date();
        const conditions = plan.status.conditions?.map((c) => {
          const before = deployment.status?.conditions?.find((b) => b.type === c.type);
          const transition = before?.status === c.status ? before.lastTransitionTime : now;
          return { ...c, lastUpdateTime: now, lastTransitionTime: transition ?? now };
        });
        try {
          await apps.replaceNamespacedDeploymentStatus({
            name: deployment.metadata?.name ?? "",
            namespace,
            body: { ...deployment, status: { ...plan.status, conditions } },
          });
        } catch (error) {
          // A stale cached copy (409) is refreshed by the watch, which triggers another pass.
          if (apiStatus(error) !== 409 && apiStatus(error) !== 404) throw error;
        }
      }
    }
    for (const orphan of orphanedPods(allPods, deployments.list())) {
      try {
        await core.deleteNamespacedPod({
          name: orphan.metadata?.name ?? "",
          namespace: orphan.metadata?.namespace ?? "default",
        });
        log.info({ pod: key(orphan) }, "garbage-collected pod of a deleted deployment");
      } catch (error) {
        if (apiStatus(error) !== 404) throw error;
      }
    }
  });

  const podsChanged = () => {
    scheduler.trigger();
    endpointSlices.trigger();
    deploymentController.trigger();
  };
  const nodesChanged = () => {
    nodeIpam.trigger();
    scheduler.trigger();
  };
  const cacheLog = log.child({ component: "cache" });
  nodes = startInformer<V1Node>({
    name: "nodes",
    kubeConfig,
    path: "/api/v1/nodes",
    list: () => core.listNode(),
    onChange: nodesChanged,
    onListed: nodesChanged,
    log: cacheLog,
  });
  pods = startInformer<V1Pod>({
    name: "pods",
    kubeConfig,
    path: "/api/v1/pods",
    list: () => core.listPodForAllNamespaces(),
    onChange: podsChanged,
    onListed: podsChanged,
    log: cacheLog,
  });
  services = startInformer<V1Service>({
    name: "services",
    kubeConfig,
    path: "/api/v1/services",
    list: () => core.listServiceForAllNamespaces(),
    onChange: () => endpointSlices.trigger(),
    onListed: () => endpointSlices.trigger(),
    log: cacheLog,
  });
  slices = startInformer<V1EndpointSlice>({
    name: "slices",
    kubeConfig,
    path: "/apis/discovery.k8s.io/v1/endpointslices",
    list: () => discovery.listEndpointSliceForAllNamespaces(),
    onChange: () => endpointSlices.trigger(),
    onListed: () => endpointSlices.trigger(),
    log: cacheLog,
  });
  deployments = startInformer<V1Deployment>({
    name: "deployments",
    kubeConfig,
    path: "/apis/apps/v1/deployments",
    list: () => apps.listDeploymentForAllNamespaces(),
    onChange: () => deploymentController.trigger(),
    onListed: () => deploymentController.trigger(),
    log: cacheLog,
  });
  log.info({ cluster: options.clusterName }, "controllers started");

  return {
    stop: async () => {
      for (const trigger of triggers) trigger.close();
      await Promise.all([nodes, pods, services, slices, deployments].map((c) => c.stop()));
    },
  };
}
