/** Who a lab pod is, from the environment the lab kubelet gives every container. */
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
    cluster: env.CLUSTER_NAME ?? "",
    podIP: env.POD_IP ?? "",
  };
}
