/**
 * Who a demo pod is, from the environment the lab kubelet gives every container; on another
 * runtime (kind) from the downward-API variables the demo manifests set, the cluster named after
 * kind's node names (`<cluster>-control-plane`, `<cluster>-worker2`).
 */
export interface PodIdentity {
  pod: string;
  namespace: string;
  node: string;
  cluster: string;
  podIP: string;
}

export function podIdentity(env: NodeJS.ProcessEnv = process.env): PodIdentity {
  return {
    pod: env.POD_NAME ?? env.HOSTNAME ?? "",
    namespace: env.POD_NAMESPACE ?? "",
    node: env.NODE_NAME ?? "",
    cluster: env.CLUSTER_NAME ?? (env.NODE_NAME ?? "").replace(/-(control-plane|worker\d*)$/, ""),
    podIP: env.POD_IP ?? "",
  };
}
