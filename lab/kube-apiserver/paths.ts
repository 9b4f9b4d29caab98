/** Parses Kubernetes REST paths into what they address. */

export interface ResourcePath {
  group: string;
  version: string;
  namespace?: string;
  resource: string;
  name?: string;
  subresource?: string;
}

export type ApiPath =
  | { kind: "resource"; path: ResourcePath }
  | { kind: "groupVersion"; group: string; version: string }
  | { kind: "group"; group: string }
  | { kind: "root" /* /api or /apis */; legacy: boolean }
  | { kind: "unknown" };

export function parseApiPath(pathname: string): ApiPath {
  const segments = pathname
    .split("/")
    .filter((s) => s !== "")
    .map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (segments[0] === "api") {
    if (segments.length === 1) return { kind: "root", legacy: true };
    group = "";
    version = segments[1];
    rest = segments.slice(2);
  } else if (segments[0] === "apis") {
    if (segments.length === 1) return { kind: "root", legacy: false };
    if (segments.length === 2) return { kind: "group", group: segments[1] };
    group = segments[1];
    version = segments[2];
    rest = segments.slice(3);
  } else {
    return { kind: "unknown" };
  }
  if (rest.length === 0) return { kind: "groupVersion", group, version };
  // /namespaces/{ns}/{resource}[/{name}[/{sub}]] unless it addresses a namespace itself.
  const namespaceSubresource =
    group === "" && rest[0] === "namespaces" && rest.length === 3 && ["status", "finalize"].includes(rest[2]);
  if (rest[0] === "namespaces" && rest.length >= 3 && !namespaceSubresource) {
    const [, namespace, resource, name, subresource, ...extra] = rest;
    if (extra.length > 0) return { kind: "unknown" };
    return { kind: "resource", path: { group, version, namespace, resource, name, subresource } };
  }
  const [resource, name, subresource, ...extra] = rest;
  if (extra.length > 0) return { kind: "unknown" };
  return { kind: "resource", path: { group, version, resource, name, subresource } };
}
