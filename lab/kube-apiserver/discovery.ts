/**
 * Discovery documents (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`, `/version`) and a
 * minimal OpenAPI v3 index, enough for kubectl to map kinds and short names to resources and to learn
 * that the server validates fields itself (so it skips client-side schema validation).
 */
import { ALL_VERBS, apiVersionOf, type ResourceRegistry, type ResourceType } from "./registry.js";

export function versionInfo(gitVersion: string): Record<string, string> {
  const m = /^v(\d+)\.(\d+)/.exec(gitVersion);
  return {
    major: m?.[1] ?? "1",
    minor: m?.[2] ?? "31",
    gitVersion,
    gitCommit: "0000000000000000000000000000000000000000",
    gitTreeState: "clean",
    buildDate: "2024-08-13T00:00:00Z",
    goVersion: "go1.22.5",
    compiler: "gc",
    platform: "linux/amd64",
  };
}

export function coreApiVersions(serverAddress: string): object {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

export function apiGroupList(registry: ResourceRegistry): object {
  const groups = registry
    .groups()
    .filter((g) => g.group !== "")
    .map((g) => ({
      name: g.group,
      versions: g.versions.map((version) => ({ groupVersion: `${g.group}/${version}`, version })),
      preferredVersion: { groupVersion: `${g.group}/${g.versions[0]}`, version: g.versions[0] },
    }));
  return { kind: "APIGroupList", apiVersion: "v1", groups };
}

export function apiGroup(registry: ResourceRegistry, group: string): object | undefined {
  const found = registry.groups().find((g) => g.group === group && group !== "");
  if (!found) return undefined;
  return {
    kind: "APIGroup",
    apiVersion: "v1",
    name: group,
    versions: found.versions.map((version) => ({ groupVersion: `${group}/${version}`, version })),
    preferredVersion: { groupVersion: `${group}/${found.versions[0]}`, version: found.versions[0] },
  };
}

function subresourceEntries(rt: ResourceType): object[] {
  const entry = (sub: string, kind: string, verbs: string[], group?: string, version?: string) => ({
    name: `${rt.resource}/${sub}`,
    singularName: "",
    namespaced: rt.namespaced,
    kind,
    verbs,
    ...(group !== undefined ? { group, version } : {}),
  });
  const entries: object[] = [];
  if (rt.status) entries.push(entry("status", rt.kind, ["get", "patch", "update"]));
  if (rt.scale) entries.push(entry("scale", "Scale", ["get", "patch", "update"], "autoscaling", "v1"));
  if (rt.binding) entries.push(entry("binding", "Binding", ["create"]));
  for (const sub of rt.kubeletProxied ?? []) {
    entries.push(
      entry(
        sub,
        sub === "log" ? "Pod" : `Pod${sub[0].toUpperCase()}${sub.slice(1)}Options`,
        sub === "log" ? ["get"] : ["create", "get"],
      ),
    );
  }
  return entries;
}

export function apiResourceList(
  registry: ResourceRegistry,
  group: string,
  version: string,
): object | undefined {
  const types = registry.resourcesOf(group, version);
  if (types.length === 0) return undefined;
  const resources = types.flatMap((rt) => [
    {
      name: rt.resource,
      singularName: rt.singular,
      namespaced: rt.namespaced,
      kind: rt.kind,
      verbs: ALL_VERBS,
      ...(rt.shortNames.length ? { shortNames: rt.shortNames } : {}),
      ...(rt.categories.length ? { categories: rt.categories } : {}),
    },
    ...subresourceEntries(rt),
  ]);
  return {
    kind: "APIResourceList",
    apiVersion: "v1",
    groupVersion: apiVersionOf({ group, version }),
    resources,
  };
}

/** `/openapi/v3`: one entry per group-version, each pointing at the document below. */
export function openApiV3Index(registry: ResourceRegistry): object {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const g of registry.groups()) {
    for (const version of g.versions) {
      const path = g.group === "" ? `api/${version}` : `apis/${g.group}/${version}`;
      paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${hashOf(registry, g.group, version)}` };
    }
  }
  return { paths };
}

function hashOf(registry: ResourceRegistry, group: string, version: string): string {
  const text = registry
    .resourcesOf(group, version)
    .map((rt) => `${rt.resource}:${rt.kind}:${rt.namespaced}`)
    .join(",");
  let hash = 0;
  for (const char of text) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return hash.toString(16).toUpperCase().padStart(8, "0");
}

/**
 * `/openapi/v3/<api|apis/group>/<version>`: the PATCH operations with their GVK and the
 * `fieldValidation` parameter, which is what kubectl's query-parameter check reads. No schemas: kubectl
 * then computes apply patches from its built-in types (or JSON merge patches for custom resources).
 */
export function openApiV3Document(
  registry: ResourceRegistry,
  group: string,
  version: string,
): object | undefined {
  const types = registry.resourcesOf(group, version);
  if (types.length === 0) return undefined;
  const paths: Record<string, object> = {};
  const base = group === "" ? `/api/${version}` : `/apis/${group}/${version}`;
  for (const rt of types) {
    const path = rt.namespaced
      ? `${base}/namespaces/{namespace}/${rt.resource}/{name}`
      : `${base}/${rt.resource}/{name}`;
    const gvk = { group, version, kind: rt.kind };
    const fieldValidation = {
      name: "fieldValidation",
      in: "query",
      schema: { type: "string", uniqueItems: true },
    };
    paths[path] = {
      patch: {
        operationId: `patch${rt.kind}`,
        parameters: [fieldValidation],
        responses: { "200": { description: "OK" } },
        "x-kubernetes-action": "patch",
        "x-kubernetes-group-version-kind": gvk,
      },
    };
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: "v1.31.0" },
    paths,
    components: { schemas: {} },
  };
}
