/**
 * Is an endpoint's pod gone? Gone = the API has no pod of that name with that UID (a terminating
 * pod keeps its endpoint until its DEL). The watch cache answers when it holds the pod; a miss is
 * checked at the API (the cache may not have seen a pod created a moment ago).
 */
import { CoreV1Api, type KubeConfig, type V1Pod } from "@kubernetes/client-node";
import type { Informer } from "../../lib/k8s/informer.js";

export interface PodRef {
  podNamespace: string;
  podName: string;
  podUid?: string;
}

/** Pure: a pod that is there with the endpoint's UID (or any UID when the endpoint has none). */
export function podPresent(pod: V1Pod | undefined, ref: PodRef): boolean {
  return pod !== undefined && (!ref.podUid || pod.metadata?.uid === ref.podUid);
}

export function podGoneCheck(
  kubeConfig: KubeConfig,
  pods: Informer<V1Pod>,
): (ref: PodRef) => Promise<boolean> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  return async (ref) => {
    if (podPresent(pods.get(ref.podName, ref.podNamespace), ref)) return false;
    try {
      const pod = await core.readNamespacedPod({ namespace: ref.podNamespace, name: ref.podName });
      return ref.podUid !== undefined && pod.metadata?.uid !== ref.podUid;
    } catch (error) {
      if ((error as { code?: number }).code === 404) return true;
      throw error;
    }
  };
}
