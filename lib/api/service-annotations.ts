/**
 * Cilium's global-service annotations and the EndpointSlice label that names a slice's Service: the
 * one parser the agent and the clustermesh-apiserver share. Values are compared like Cilium's
 * (`strings.ToLower(v) == "true"`); the current name wins over the legacy `io.cilium/…` one; an
 * unknown affinity is "none". Pure. Cilium's source:
 * https://github.com/cilium/cilium/blob/main/pkg/annotation/k8s.go (names) and
 * https://github.com/cilium/cilium/blob/main/pkg/annotation/service.go (parsing).
 */

export const SERVICE_ANNOTATIONS = {
  global: "service.cilium.io/global",
  globalLegacy: "io.cilium/global-service",
  shared: "service.cilium.io/shared",
  sharedLegacy: "io.cilium/shared-service",
  affinity: "service.cilium.io/affinity",
  affinityLegacy: "io.cilium/service-affinity",
  /** On a Namespace: "false" keeps its services, endpoints and identities out of the mesh. */
  namespaceGlobal: "clustermesh.cilium.io/global",
} as const;

/** The label Kubernetes puts on an EndpointSlice to name its Service (discovery.k8s.io/v1). */
export const SERVICE_NAME_LABEL = "kubernetes.io/service-name";

export type ServiceAffinity = "local" | "remote" | "none";

type Annotated = { metadata?: { annotations?: Record<string, string> } } | undefined;

function firstAnnotation(object: Annotated, names: readonly string[]): string | undefined {
  const annotations = object?.metadata?.annotations ?? {};
  for (const name of names) {
    if (annotations[name] !== undefined) return annotations[name];
  }
  return undefined;
}

function flag(object: Annotated, names: readonly string[]): boolean | undefined {
  const value = firstAnnotation(object, names);
  return value === undefined ? undefined : value.toLowerCase() === "true";
}

export function isGlobalService(service: Annotated): boolean {
  return flag(service, [SERVICE_ANNOTATIONS.global, SERVICE_ANNOTATIONS.globalLegacy]) ?? false;
}

/** Whether this cluster exports the service's backends: only for global services, default true. */
export function isSharedService(service: Annotated): boolean {
  if (!isGlobalService(service)) return false;
  return flag(service, [SERVICE_ANNOTATIONS.shared, SERVICE_ANNOTATIONS.sharedLegacy]) ?? true;
}

/** Backend preference of a global service; "none" for non-global services and unknown values. */
export function serviceAffinity(service: Annotated): ServiceAffinity {
  if (!isGlobalService(service)) return "none";
  const value = firstAnnotation(service, [SERVICE_ANNOTATIONS.affinity, SERVICE_ANNOTATIONS.affinityLegacy])
    ?.trim()
    .toLowerCase();
  return value === "local" || value === "remote" ? value : "none";
}

/** Namespaces are global unless annotated otherwise (Cilium's default-global-namespace = true). */
export function isGlobalNamespace(namespace: Annotated, defaultGlobal = true): boolean {
  return flag(namespace, [SERVICE_ANNOTATIONS.namespaceGlobal]) ?? defaultGlobal;
}

/** The name of the Service an EndpointSlice belongs to, from its `kubernetes.io/service-name` label. */
export function serviceNameOf(
  slice: { metadata?: { labels?: Record<string, string> } } | undefined,
): string | undefined {
  return slice?.metadata?.labels?.[SERVICE_NAME_LABEL];
}
