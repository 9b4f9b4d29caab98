import type { V1Service } from "@kubernetes/client-node";

/**
 * A Service's ClientIP session affinity as the datapath takes it: the timeout in seconds, or
 * undefined for none. Kubernetes' defaults and limits (core/v1 validation,
 * https://github.com/kubernetes/kubernetes/blob/v1.33.13/pkg/apis/core/validation/validation.go):
 * sessionAffinity "None" | "ClientIP"; clientIP.timeoutSeconds 1..86400, default 10800 (3 h).
 * The API server refuses anything else; a value that still gets here (an older or foreign API
 * server) is reported through `onProblem`, naming the field, and the default is used. Pure.
 */
export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;
export const MAX_AFFINITY_TIMEOUT_SECONDS = 86400;

export function sessionAffinityTimeout(
  service: V1Service,
  onProblem: (message: string) => void = () => undefined,
): number | undefined {
  const affinity = service.spec?.sessionAffinity ?? "None";
  if (affinity === "None") return undefined;
  if (affinity !== "ClientIP") {
    onProblem(`spec.sessionAffinity ${JSON.stringify(affinity)} is not None or ClientIP; treated as None`);
    return undefined;
  }
  const timeout = service.spec?.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  if (timeout === undefined) return DEFAULT_AFFINITY_TIMEOUT_SECONDS;
  if (!Number.isInteger(timeout) || timeout < 1 || timeout > MAX_AFFINITY_TIMEOUT_SECONDS) {
    onProblem(
      `spec.sessionAffinityConfig.clientIP.timeoutSeconds ${JSON.stringify(timeout)} is not 1..${MAX_AFFINITY_TIMEOUT_SECONDS}; using ${DEFAULT_AFFINITY_TIMEOUT_SECONDS}`,
    );
    return DEFAULT_AFFINITY_TIMEOUT_SECONDS;
  }
  return timeout;
}
