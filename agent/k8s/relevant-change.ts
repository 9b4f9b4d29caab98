/**
 * Informer updates that change nothing a consumer reads are not news. A kubelet rewrites its Node's
 * status at least every nodeStatusReportFrequency (5 min) and on every condition change, with fresh
 * heartbeat times (https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/kubelet_node_status.go,
 * tryUpdateNodeStatus); at 1000 nodes that is several Node updates a second, and each would run the
 * agent's whole datapath reconcile for nothing.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { InformerEvent } from "../../lib/k8s/informer.js";

/**
 * An informer `onChange` that calls `changed` only when an object appears, goes, or its projection
 * (what the consumer reads, as a comparable string) differs from the one last seen.
 */
export function onProjectionChange<T extends KubernetesObject>(
  project: (object: T) => string,
  changed: () => void,
): (object: T, event: InformerEvent) => void {
  const seen = new Map<string, string>();
  return (object, event) => {
    const key = `${object.metadata?.namespace ?? ""}/${object.metadata?.name ?? ""}`;
    if (event === "delete") {
      seen.delete(key);
      changed();
      return;
    }
    const projection = project(object);
    if (seen.get(key) === projection) return;
    seen.set(key, projection);
    changed();
  };
}
