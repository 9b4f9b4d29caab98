/**
 * Removes gracefully deleted pods whose grace period has ended and that no kubelet removed. A kubelet
 * normally stops the pod's processes within the grace period and then deletes the pod with
 * gracePeriodSeconds=0; this is the backstop for pods whose node is gone.
 */
import type { Logger } from "../../lib/log.js";
import { ApiError } from "./errors.js";
import type { KubeObject } from "./objects.js";
import type { ResourceType } from "./registry.js";
import type { ObjectStore } from "./storage.js";

export class PodReaper {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private closed = false;

  constructor(
    private readonly store: ObjectStore,
    private readonly pods: ResourceType,
    private readonly log: Logger,
  ) {}

  /** Schedules every pod already being deleted (after a restart of the server). */
  async start(): Promise<void> {
    const { items } = await this.store.list(this.pods);
    for (const pod of items) if (pod.metadata.deletionTimestamp) this.schedule(pod);
  }

  schedule(pod: KubeObject): void {
    if (this.closed || !pod.metadata.deletionTimestamp) return;
    const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
    clearTimeout(this.timers.get(key));
    const due = Date.parse(pod.metadata.deletionTimestamp) - Date.now();
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.reap(pod.metadata.namespace ?? "", pod.metadata.name ?? "").catch((error) =>
        this.log.warn({ err: error, pod: key }, "could not remove a pod after its grace period"),
      );
    }, Math.max(0, due) + 1000);
    timer.unref();
    this.timers.set(key, timer);
  }

  private async reap(namespace: string, name: string): Promise<void> {
    const pod = await this.store.get(this.pods, namespace, name);
    if (!pod?.metadata.deletionTimestamp || (pod.metadata.finalizers ?? []).length > 0) return;
    if (Date.parse(pod.metadata.deletionTimestamp) > Date.now()) {
      this.schedule(pod);
      return;
    }
    try {
      await this.store.delete(this.pods, pod, Number(pod.metadata.resourceVersion));
      this.log.info({ pod: `${namespace}/${name}` }, "removed pod after its grace period");
    } catch (error) {
      if (error instanceof ApiError && error.reason === "Conflict") {
        const fresh = await this.store.get(this.pods, namespace, name);
        if (fresh) this.schedule(fresh);
      } else if (!(error instanceof ApiError && error.code === 404)) throw error;
    }
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
