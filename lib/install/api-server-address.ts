/**
 * The default for --k8s-service-host/--k8s-service-port: the address the API server advertises in
 * the `kubernetes` Endpoints (default namespace), which is the API server's own, reachable from the
 * nodes without kube-proxy (kind: the control-plane container's IP and 6443), unlike the Service IP.
 */
import type { KubeConfig } from "@kubernetes/client-node";
import { coreApi } from "../k8s/client.js";

export async function advertisedApiServer(
  kc: KubeConfig,
): Promise<{ host: string; port: number } | undefined> {
  const endpoints = await coreApi(kc).readNamespacedEndpoints({ name: "kubernetes", namespace: "default" });
  const subset = endpoints.subsets?.[0];
  const host = subset?.addresses?.[0]?.ip;
  const port = subset?.ports?.find((p) => p.name === "https")?.port ?? subset?.ports?.[0]?.port;
  return host && port ? { host, port } : undefined;
}
