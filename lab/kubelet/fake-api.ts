import { randomUUID } from "node:crypto";
import type { V1Node, V1NodeStatus, V1Pod } from "@kubernetes/client-node";
import type { KubeletApi } from "./kubelet.js";

/** An in-memory stand-in for the API server, for tests of the kubelet's pod lifecycle. */
export class FakeKubeletApi implements KubeletApi {
  readonly pods = new Map<string, V1Pod>();
  readonly events: { pod: string; type: string; reason: string; message: string }[] = [];
  node: V1Node | undefined;
  /** Every lease renewal: when, and the duration asked for. */
  readonly leaseRenewals: { at: number; durationSeconds: number }[] = [];
  private listeners: ((pod: V1Pod, deleted: boolean) => void)[] = [];

  async watchPods(_nodeName: string, onPod: (pod: V1Pod, deleted: boolean) => void) {
    this.listeners.push(onPod);
    for (const pod of this.pods.values()) onPod(pod, false);
    return {
      stop: async () => {
        this.listeners = this.listeners.filter((l) => l !== onPod);
      },
    };
  }

  private emit(pod: V1Pod, deleted: boolean): void {
    for (const listener of this.listeners) listener(structuredClone(pod), deleted);
  }

  /** Creates a pod already bound to nodeName. */
  createPod(name: string, nodeName: string, spec: Partial<NonNullable<V1Pod["spec"]>>): V1Pod {
    const pod: V1Pod = {
      metadata: { name, namespace: "default", uid: randomUUID(), creationTimestamp: new Date() },
      spec: { nodeName, containers: [], ...spec },
      status: { phase: "Pending" },
    };
    this.pods.set(name, pod);
    this.emit(pod, false);
    return pod;
  }

  /** Graceful delete: sets deletionTimestamp; the kubelet finishes it with deletePod. */
  requestDelete(name: string, graceSeconds = 5): void {
    const pod = this.pods.get(name);
    if (!pod?.metadata) return;
    pod.metadata.deletionTimestamp = new Date();
    pod.metadata.deletionGracePeriodSeconds = graceSeconds;
    this.emit(pod, false);
  }

  async updateStatus(pod: V1Pod, status: NonNullable<V1Pod["status"]>): Promise<void> {
    const stored = this.pods.get(pod.metadata?.name ?? "");
    if (stored && stored.metadata?.uid === pod.metadata?.uid) stored.status = structuredClone(status);
  }

  async deletePod(pod: V1Pod): Promise<void> {
    const stored = this.pods.get(pod.metadata?.name ?? "");
    if (stored && stored.metadata?.uid === pod.metadata?.uid) {
      this.pods.delete(pod.metadata?.name ?? "");
      this.emit(stored, true);
    }
  }

  async event(pod: V1Pod, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    this.events.push({ pod: pod.metadata?.name ?? "", type, reason, message });
  }

  readonly configMaps = new Map<string, Record<string, string>>();
  readonly secrets = new Map<string, Record<string, string>>();

  async readConfigMap(namespace: string, name: string): Promise<Record<string, Buffer> | undefined> {
    const data = this.configMaps.get(`${namespace}/${name}`);
    return data && Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v)]));
  }

  async readSecret(namespace: string, name: string): Promise<Record<string, Buffer> | undefined> {
    const data = this.secrets.get(`${namespace}/${name}`);
    return data && Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v)]));
  }

  /** A token naming the pod (no signature: nothing verifies it here). */
  async requestToken(pod: V1Pod, options: { expirationSeconds: number }) {
    return {
      token: `token-for-${pod.metadata?.namespace}/${pod.metadata?.name}`,
      expiresAt: new Date(Date.now() + options.expirationSeconds * 1000),
    };
  }

  async kubernetesService() {
    return undefined;
  }

  async registerNode(node: V1Node): Promise<V1Node> {
    this.node = structuredClone(node);
    this.node.metadata = { ...this.node.metadata, uid: this.node.metadata?.uid ?? randomUUID() };
    return this.node;
  }

  async renewLease(_node: { name: string; uid?: string }, durationSeconds: number): Promise<void> {
    this.leaseRenewals.push({ at: Date.now(), durationSeconds });
  }

  async updateNodeStatus(
    _name: string,
    status: (previous: V1NodeStatus | undefined) => V1NodeStatus | undefined,
  ): Promise<void> {
    if (this.node) this.node.status = status(this.node.status) ?? this.node.status;
  }
}
