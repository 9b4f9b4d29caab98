import { randomBytes } from "node:crypto";
import {
  CoordinationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1Lease,
  V1MicroTime,
  type V1Node,
  type V1NodeStatus,
  type V1Pod,
} from "@kubernetes/client-node";
import { apiStatus } from "../../lib/k8s/client.js";
import { startInformer } from "../../lib/k8s/informer.js";
import type { Logger } from "../../lib/log.js";
import type { KubeletApi } from "./kubelet.js";
import { restrictedNodeLabels } from "./node-status.js";

/** Where node leases live (the NodeLease heartbeat, KEP-589). */
export const NODE_LEASE_NAMESPACE = "kube-node-lease";

/** The kubelet's API access through @kubernetes/client-node (status writes retry on 409). */
export class KubeApi implements KubeletApi {
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;
  /** The lease as last written, so a renewal is one PUT (as the kubelet's lease controller does). */
  private lease: V1Lease | undefined;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly nodeName: string,
    private readonly log: Logger,
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
    this.coordination = kubeConfig.makeApiClient(CoordinationV1Api);
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
        if (apiStatus(error) !== 409 || i >= 4)
          throw new Error(`${what}: ${errorText(error)}`, { cause: error });
      }
    }
  }

  async readConfigMap(namespace: string, name: string): Promise<Record<string, Buffer> | undefined> {
    const configMap = await this.readOrUndefined(() =>
      this.core.readNamespacedConfigMap({ namespace, name }),
    );
    if (!configMap) return undefined;
    return {
      ...Object.fromEntries(Object.entries(configMap.data ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
      ...Object.fromEntries(
        Object.entries(configMap.binaryData ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")]),
      ),
    };
  }

  async readSecret(namespace: string, name: string): Promise<Record<string, Buffer> | undefined> {
    const secret = await this.readOrUndefined(() => this.core.readNamespacedSecret({ namespace, name }));
    if (!secret) return undefined;
    return {
      ...Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")])),
      ...Object.fromEntries(Object.entries(secret.stringData ?? {}).map(([k, v]) => [k, Buffer.from(v)])),
    };
  }

  /** The node may read an object a pod bound to it references (Node authorizer); 404 → undefined. */
  private async readOrUndefined<T>(read: () => Promise<T>): Promise<T | undefined> {
    try {
      return await read();
    } catch (error) {
      if (apiStatus(error) === 404) return undefined;
      throw error;
    }
  }

  private kubernetesServiceAddress: { host: string; port: number } | undefined;

  /** default/kubernetes: its ClusterIP and https port never change, so it is read once. */
  async kubernetesService(): Promise<{ host: string; port: number } | undefined> {
    if (this.kubernetesServiceAddress) return this.kubernetesServiceAddress;
    const service = await this.readOrUndefined(() =>
      this.core.readNamespacedService({ namespace: "default", name: "kubernetes" }),
    );
    const host = service?.spec?.clusterIP;
    const port =
      service?.spec?.ports?.find((p) => p.name === "https")?.port ?? service?.spec?.ports?.[0]?.port;
    if (!host || !port) return undefined;
    this.kubernetesServiceAddress = { host, port };
    return this.kubernetesServiceAddress;
  }

  /** TokenRequest bound to the pod, as the kubelet's projected service-account token. */
  async requestToken(
    pod: V1Pod,
    options: { expirationSeconds: number; audience?: string },
  ): Promise<{ token: string; expiresAt: Date }> {
    const response = await this.core.createNamespacedServiceAccountToken({
      namespace: pod.metadata?.namespace ?? "default",
      name: pod.spec?.serviceAccountName ?? "default",
      body: {
        spec: {
          audiences: options.audience ? [options.audience] : [],
          expirationSeconds: options.expirationSeconds,
          boundObjectRef: { apiVersion: "v1", kind: "Pod", name: pod.metadata?.name, uid: pod.metadata?.uid },
        },
      },
    });
    const token = response.status?.token;
    if (!token)
      throw new Error(
        `TokenRequest for pod ${pod.metadata?.namespace}/${pod.metadata?.name} returned no token`,
      );
    return {
      token,
      expiresAt: new Date(
        response.status?.expirationTimestamp ?? Date.now() + options.expirationSeconds * 1000,
      ),
    };
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

  /**
   * Creates the Node. Labels that the NodeRestriction admission plugin keeps from kubelets
   * (node-role.kubernetes.io/… and other kubernetes.io labels outside its allowed list) are
   * dropped when the API server refuses them: an administrator sets those (kubeadm's
   * mark-control-plane does), and the lab's own API server accepts them.
   */
  async registerNode(node: V1Node): Promise<V1Node> {
    const name = node.metadata?.name ?? "";
    try {
      return await this.core.createNode({ body: node });
    } catch (error) {
      const restricted = restrictedNodeLabels(node.metadata?.labels ?? {});
      if (apiStatus(error) === 403 && restricted.length > 0) {
        this.log.warn(
          { labels: restricted, err: errorText(error) },
          "the API server does not let a kubelet set these labels (NodeRestriction); registering without them",
        );
        const labels = { ...(node.metadata?.labels ?? {}) };
        for (const key of restricted) delete labels[key];
        return this.registerNode({ ...node, metadata: { ...node.metadata, labels } });
      }
      if (apiStatus(error) !== 409)
        throw new Error(`register node ${name}: ${errorText(error)}`, { cause: error });
    }
    // Re-registration (kubelet restart): keep what others set (podCIDR, labels, taints an admin
    // removed), add only our missing labels and taints. A refusal (NodeRestriction forbids a
    // kubelet to change taints and restricted labels) leaves the node as it is.
    let stored: V1Node | undefined;
    try {
      await this.retryOnConflict(`update node ${name}`, async () => {
        const current = await this.core.readNode({ name });
        stored = current;
        const taints = [...(current.spec?.taints ?? [])];
        for (const taint of node.spec?.taints ?? [])
          if (!taints.some((t) => t.key === taint.key && t.effect === taint.effect)) taints.push(taint);
        const labels = { ...(current.metadata?.labels ?? {}), ...(node.metadata?.labels ?? {}) };
        const unchanged =
          taints.length === (current.spec?.taints ?? []).length &&
          JSON.stringify(labels) === JSON.stringify(current.metadata?.labels ?? {});
        if (unchanged) return;
        stored = await this.core.replaceNode({
          name,
          body: { ...current, metadata: { ...current.metadata, labels }, spec: { ...current.spec, taints } },
        });
      });
    } catch (error) {
      if (!stored) throw error;
      this.log.warn({ err: (error as Error).message }, "node exists; could not add our labels/taints to it");
    }
    return stored ?? node;
  }

  /**
   * Renews (or creates) the node's Lease in kube-node-lease: holder = the node, renewTime = now,
   * owned by the Node object so it goes with it.
   */
  async renewLease(node: { name: string; uid?: string }, durationSeconds: number): Promise<void> {
    const namespace = NODE_LEASE_NAMESPACE;
    const now = new V1MicroTime();
    const renewed = (lease: V1Lease): V1Lease => ({
      ...lease,
      spec: {
        ...lease.spec,
        holderIdentity: node.name,
        leaseDurationSeconds: durationSeconds,
        // Read back as plain Dates: MicroTime must be written with microseconds again.
        ...(lease.spec?.acquireTime ? { acquireTime: new V1MicroTime(lease.spec.acquireTime) } : {}),
        renewTime: now,
      },
    });
    if (this.lease) {
      try {
        this.lease = await this.coordination.replaceNamespacedLease({
          name: node.name,
          namespace,
          body: renewed(this.lease),
        });
        return;
      } catch (error) {
        if (apiStatus(error) !== 409 && apiStatus(error) !== 404)
          throw new Error(`renew lease ${namespace}/${node.name}: ${errorText(error)}`, { cause: error });
        this.lease = undefined; // changed or removed behind our back: read it again
      }
    }
    try {
      const current = await this.coordination.readNamespacedLease({ name: node.name, namespace });
      this.lease = await this.coordination.replaceNamespacedLease({
        name: node.name,
        namespace,
        body: renewed(current),
      });
    } catch (error) {
      if (apiStatus(error) !== 404)
        throw new Error(`renew lease ${namespace}/${node.name}: ${errorText(error)}`, { cause: error });
      this.lease = await this.coordination.createNamespacedLease({
        namespace,
        body: {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: {
            name: node.name,
            namespace,
            ...(node.uid
              ? { ownerReferences: [{ apiVersion: "v1", kind: "Node", name: node.name, uid: node.uid }] }
              : {}),
          },
          spec: { holderIdentity: node.name, leaseDurationSeconds: durationSeconds, renewTime: now },
        },
      });
    }
  }

  async updateNodeStatus(
    name: string,
    status: (previous: V1NodeStatus | undefined) => V1NodeStatus | undefined,
  ): Promise<void> {
    await this.retryOnConflict(`update status of node ${name}`, async () => {
      const current = await this.core.readNode({ name });
      const next = status(current.status);
      if (next) await this.core.replaceNodeStatus({ name, body: { ...current, status: next } });
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
