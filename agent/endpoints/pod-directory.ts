/**
 * Pod lookups for CNI ADD: the agent's watch cache of this node's pods when it already holds the
 * pod (two API round trips less per ADD), the API itself otherwise, so a pod created a moment ago
 * is found and one the cache saw deleted is confirmed gone at the source.
 */
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import { apiStatus } from "../../lib/k8s/client.js";
import type { PodDirectory, PodInfo } from "./manager.js";
import type { NamedPort } from "./store.js";

export function namedPorts(pod: V1Pod): NamedPort[] {
  const ports: NamedPort[] = [];
  for (const container of pod.spec?.containers ?? []) {
    for (const port of container.ports ?? []) {
      if (port.name)
        ports.push({ name: port.name, port: port.containerPort, protocol: port.protocol ?? "TCP" });
    }
  }
  return ports;
}

export class ApiPodDirectory implements PodDirectory {
  private readonly api: CoreV1Api;

  constructor(
    kubeConfig: KubeConfig,
    /** namespace labels from the informer cache (they change rarely; a miss means none) */
    private readonly namespaceLabels: (namespace: string) => Record<string, string> | undefined,
    /** this node's pods from the informer cache */
    private readonly cachedPod: (namespace: string, name: string) => V1Pod | undefined = () => undefined,
  ) {
    this.api = kubeConfig.makeApiClient(CoreV1Api);
  }

  async getPod(namespace: string, name: string, uid?: string): Promise<PodInfo | undefined> {
    let pod = this.cachedPod(namespace, name);
    if (!pod || (uid && pod.metadata?.uid !== uid)) {
      try {
        pod = await this.api.readNamespacedPod({ namespace, name });
      } catch (error) {
        if (apiStatus(error) === 404) return undefined;
        throw error;
      }
    }
    let nsLabels = this.namespaceLabels(namespace);
    if (nsLabels === undefined) {
      try {
        nsLabels = (await this.api.readNamespace({ name: namespace })).metadata?.labels ?? {};
      } catch (error) {
        if (apiStatus(error) !== 404) throw error;
        nsLabels = {};
      }
    }
    return {
      uid: pod.metadata?.uid ?? "",
      namespace,
      name,
      labels: pod.metadata?.labels ?? {},
      namespaceLabels: nsLabels,
      serviceAccount: pod.spec?.serviceAccountName ?? "default",
      namedPorts: namedPorts(pod),
      terminating: Boolean(pod.metadata?.deletionTimestamp),
    };
  }
}
