/** Cilium's global-service annotations (reference §4.1). Pure. */

export const ANNOTATIONS = {
  global: "service.cilium.io/global",
  globalLegacy: "io.cilium/global-service",
  shared: "service.cilium.io/shared",
  sharedLegacy: "io.cilium/shared-service",
  /** On a Namespace: "false" keeps its services, endpoints and identities out of the mesh. */
  namespaceGlobal: "clustermesh.cilium.io/global",
} as const;

type Annotated = { metadata?: { annotations?: Record<string, string> } } | undefined;

function flag(object: Annotated, names: string[]): boolean | undefined {
  const annotations = object?.metadata?.annotations ?? {};
  for (const name of names) {
    const value = annotations[name];
    if (value !== undefined) return value.toLowerCase() === "true";
  }
  return undefined;
}

export function isGlobalService(service: Annotated): boolean {
  return flag(service, [ANNOTATIONS.global, ANNOTATIONS.globalLegacy]) ?? false;
}

/** Whether this cluster exports the service's backends: only for global services, default true. */
export function isSharedService(service: Annotated): boolean {
  if (!isGlobalService(service)) return false;
  return flag(service, [ANNOTATIONS.shared, ANNOTATIONS.sharedLegacy]) ?? true;
}

/** Namespaces are global unless annotated otherwise (Cilium's default-global-namespace = true). */
export function isGlobalNamespace(namespace: Annotated, defaultGlobal = true): boolean {
  return flag(namespace, [ANNOTATIONS.namespaceGlobal]) ?? defaultGlobal;
}
