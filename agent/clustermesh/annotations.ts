/**
 * Cilium's global-service annotations as the agent reads them (reference §4.1): whether a local
 * Service merges remote backends, and which side it prefers. Values are compared like Cilium's
 * (`strings.ToLower(v) == "true"`); an unknown affinity is treated as "none". Pure.
 */

export const SERVICE_ANNOTATIONS = {
  global: "service.cilium.io/global",
  globalLegacy: "io.cilium/global-service",
  shared: "service.cilium.io/shared",
  sharedLegacy: "io.cilium/shared-service",
  affinity: "service.cilium.io/affinity",
  affinityLegacy: "io.cilium/service-affinity",
} as const;

export type ServiceAffinity = "local" | "remote" | "none";

type Annotated = { metadata?: { annotations?: Record<string, string> } } | undefined;

function firstAnnotation(object: Annotated, names: readonly string[]): string | undefined {
  const annotations = object?.metadata?.annotations ?? {};
  for (const name of names) {
    if (annotations[name] !== undefined) return annotations[name];
  }
  return undefined;
}

export function isGlobalService(service: Annotated): boolean {
  return (
    firstAnnotation(service, [
      SERVICE_ANNOTATIONS.global,
      SERVICE_ANNOTATIONS.globalLegacy,
    ])?.toLowerCase() === "true"
  );
}

/** Whether this cluster exports its backends: only global services, default true. */
export function isSharedService(service: Annotated): boolean {
  if (!isGlobalService(service)) return false;
  const value = firstAnnotation(service, [SERVICE_ANNOTATIONS.shared, SERVICE_ANNOTATIONS.sharedLegacy]);
  return value === undefined ? true : value.toLowerCase() === "true";
}

/** Backend preference of a global service; "none" for non-global services and unknown values. */
export function serviceAffinity(service: Annotated): ServiceAffinity {
  if (!isGlobalService(service)) return "none";
  const value = firstAnnotation(service, [SERVICE_ANNOTATIONS.affinity, SERVICE_ANNOTATIONS.affinityLegacy])
    ?.trim()
    .toLowerCase();
  return value === "local" || value === "remote" ? value : "none";
}
