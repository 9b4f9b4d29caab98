import { randomBytes } from "node:crypto";
import {
  CoreV1Api,
  type KubeConfig,
  type V1Node,
  type V1NodeStatus,
  type V1Pod,
} from "@kubernetes/client-node";
import { apiStatus } from "../../lib/k8s/client.js";
import { startInformer } from "../../lib/k8s/informer.js";
import type { Logger } from "../../lib/log.js";
import type { KubeletApi } from "./kubelet.js";

/** The kubelet's API access through @kubernetes/client-node (status writes retry on 409). */
export class KubeApi implements KubeletApi {
  private readonly core: CoreV1Api;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly nodeName: string,
    private readonly log: Logger,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  async watchPods(nodeName: string, onPod: (pod: V1Pod, deleted: boolean) => void) {
    const fieldSelector = `spec.nodeName=${nodeName}`;
    const known = new Map<string, V1Pod>();
    const cache = startInformer<V1Pod>({
      name: "pods",
      kubeConfig: this.kubeConfig,
      path: "/api/v1/pods",
      fieldSelector,
      list: () => this.core.listPodForAllNamespaces({ fieldSelector }),
      onChange: (pod, event) => {
        const uid = pod.metadata?.uid ?? "";
        if (event === "delete") known.delete(uid);
        else known.set(uid, pod);
        onPod(pod, event === "delete");
      },
      // A (re)list: deliver everything, and deletions that happened while we were not watching.
      onListed: () => {
        const listed = new Map(cache.list().map((p) => [p.metadata?.uid ?? "", p]));
        for (const [uid, old] of known) if (!listed.has(uid)) onPod(old, true);
        known.clear();
        for (const [uid, p] of listed) {
          known.set(uid, p);
          onPod(p, false);
        }
      },
      log: this.log,
    });
    return cache;
  }

  private async retryOnConflict(what: string, attempt: () => Promise<void>): Promise<void> {
    for (let i = 0; ; i++) {
      try {
        await attempt();
        return;
      } catch (error) {
        if (apiStatus(error) !== 409 || i >= 4) throw new Error(`${what}: ${errorText(error)}`);
      }
    }
  }

  async updateStatus(pod: V1Pod, status: NonNullable<V1Pod["status"]>): Promise<void> {
    const name = pod.metadata?.name ?? "";
    const namespace = pod.metadata?.namespace ?? "default";
    await this.retryOnConflict(`update status of pod ${namespace}/${name}`, async () => {
      const current = await this.core.readNamespacedPod({ name, namespace });
      if (current.metadata?.uid !== pod.metadata?.uid) return; // replaced by a namesake
      await this.core.replaceNamespacedPodStatus({ name, namespace, body: { ...current, status } });
    });
  }

  async deletePod(pod: V1Pod): Promise<void> {
    try {
      await this.core.deleteNamespacedPod({
        name: pod.metadata?.name ?? "",
        namespace: pod.metadata?.namespace ?? "default",
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata?.uid } },
      });
    } catch (error) {
      if (apiStatus(error) !== 404 && apiStatus(error) !== 409) throw error;
    }
  }

  async event(pod: V1Pod, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const namespace = pod.metadata?.namespace ?? "default";
    const now = new Date();
    await this.core.createNamespacedEvent({
      namespace,
      body: {
        metadata: { name: `${pod.metadata?.name}.${randomBytes(8).toString("hex")}`, namespace },
        involvedObject: {
          apiVersion: "v1",
          kind: "Pod",
          name: pod.metadata?.name,
          namespace,
          uid: pod.metadata?.uid,
          resourceVersion: pod.metadata?.resourceVersion,
        },
        reason,
        message,
        type,
        source: { component: "kubelet", host: this.nodeName },
        reportingComponent: "kubelet",
        reportingInstance: this.nodeName,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  }

  async registerNode(node: V1Node): Promise<V1Node> {
    const name = node.metadata?.name ?? "";
    try {
      return await this.core.createNode({ body: node });
    } catch (error) {
      if (apiStatus(error) !== 409) throw new Error(`register node ${name}: ${errorText(error)}`);
    }
    // Re-registration (kubelet restart): keep what others set (podCIDR, labels), refresh ours.
    let stored: V1Node | undefined;
    await this.retryOnConflict(`update node ${name}`, async () => {
      const current = await this.core.readNode({ name });
      const taints = [...(current.spec?.taints ?? [])];
      for (const taint of node.spec?.taints ?? [])
        if (!taints.some((t) => t.key === taint.key && t.effect === taint.effect)) taints.push(taint);
      stored = await this.core.replaceNode({
        name,
        body: {
          ...current,
          metadata: {
            ...current.metadata,
            labels: { ...(current.metadata?.labels ?? {}), ...(node.metadata?.labels ?? {}) },
          },
          spec: { ...current.spec, taints },
        },
      });
    });
    return stored ?? node;
  }

  async updateNodeStatus(
    name: string,
    status: (previous: V1NodeStatus | undefined) => V1NodeStatus,
  ): Promise<void> {
    await this.retryOnConflict(`update status of node ${name}`, async () => {
      const current = await this.core.readNode({ name });
      await this.core.replaceNodeStatus({ name, body: { ...current, status: status(current.status) } });
    });
  }
}

function errorText(error: unknown): string {
  const body = (error as { body?: unknown })?.body;
  if (typeof body === "string") {
    try {
      return (JSON.parse(body) as { message?: string }).message ?? body;
    } catch {
      return body;
    }
  }
  return error instanceof Error ? error.message : String(error);
}
