/**
 * What the server serves: the built-in resources the lab and the product need, plus every resource a
 * CustomResourceDefinition declares (added and removed as CRDs come and go).
 */

export interface ScaleSubresource {
  specReplicasPath: string;
  statusReplicasPath: string;
  labelSelectorPath?: string;
}

export interface ResourceType {
  group: string;
  version: string;
  /** Plural, lower case: the URL segment and the etcd key segment. */
  resource: string;
  singular: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** A `status` subresource: the main resource ignores status changes, `/status` ignores the rest. */
  status: boolean;
  scale?: ScaleSubresource;
  /** Subresources served by proxying to the pod's kubelet (pods only). */
  kubeletProxied?: string[];
  /** Accepts POST .../binding (pods only). */
  binding?: boolean;
  /** The OpenAPI v3 schema of a custom resource version, for validation. */
  schema?: Record<string, unknown>;
  /** The CRD this resource type comes from, if any. */
  crdName?: string;
  /** Additional printer columns of a custom resource version (for `kubectl get` tables). */
  printerColumns?: { name: string; type: string; jsonPath: string; description?: string }[];
}

export const ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

export function apiVersionOf(rt: { group: string; version: string }): string {
  return rt.group ? `${rt.group}/${rt.version}` : rt.version;
}

/** The etcd key segment naming a group: "core" for the legacy "" group. */
export function storageGroup(group: string): string {
  return group === "" ? "core" : group;
}

interface BuiltinSpec {
  resource: string;
  kind: string;
  namespaced?: boolean;
  shortNames?: string[];
  categories?: string[];
  status?: boolean;
  scale?: boolean;
}

function builtin(group: string, version: string, spec: BuiltinSpec): ResourceType {
  return {
    group,
    version,
    resource: spec.resource,
    singular: spec.kind.toLowerCase(),
    kind: spec.kind,
    listKind: `${spec.kind}List`,
    namespaced: spec.namespaced ?? true,
    shortNames: spec.shortNames ?? [],
    categories: spec.categories ?? [],
    status: spec.status ?? false,
    scale: spec.scale
      ? {
          specReplicasPath: ".spec.replicas",
          statusReplicasPath: ".status.replicas",
          labelSelectorPath: ".status.selector",
        }
      : undefined,
  };
}

export function builtinResources(): ResourceType[] {
  const all = ["all"];
  const pods = builtin("", "v1", {
    resource: "pods",
    kind: "Pod",
    shortNames: ["po"],
    categories: all,
    status: true,
  });
  pods.kubeletProxied = ["log", "exec", "attach", "portforward"];
  pods.binding = true;
  return [
    builtin("", "v1", {
      resource: "namespaces",
      kind: "Namespace",
      namespaced: false,
      shortNames: ["ns"],
      status: true,
    }),
    builtin("", "v1", {
      resource: "nodes",
      kind: "Node",
      namespaced: false,
      shortNames: ["no"],
      status: true,
    }),
    pods,
    builtin("", "v1", {
      resource: "services",
      kind: "Service",
      shortNames: ["svc"],
      categories: all,
      status: true,
    }),
    builtin("", "v1", { resource: "secrets", kind: "Secret" }),
    builtin("", "v1", { resource: "configmaps", kind: "ConfigMap", shortNames: ["cm"] }),
    builtin("", "v1", { resource: "serviceaccounts", kind: "ServiceAccount", shortNames: ["sa"] }),
    builtin("", "v1", { resource: "events", kind: "Event", shortNames: ["ev"] }),
    builtin("", "v1", { resource: "endpoints", kind: "Endpoints", shortNames: ["ep"] }),
    builtin("", "v1", {
      resource: "resourcequotas",
      kind: "ResourceQuota",
      shortNames: ["quota"],
      status: true,
    }),
    builtin("", "v1", { resource: "limitranges", kind: "LimitRange", shortNames: ["limits"] }),
    builtin("apps", "v1", {
      resource: "deployments",
      kind: "Deployment",
      shortNames: ["deploy"],
      categories: all,
      status: true,
      scale: true,
    }),
    builtin("apps", "v1", {
      resource: "replicasets",
      kind: "ReplicaSet",
      shortNames: ["rs"],
      categories: all,
      status: true,
      scale: true,
    }),
    builtin("apps", "v1", {
      resource: "daemonsets",
      kind: "DaemonSet",
      shortNames: ["ds"],
      categories: all,
      status: true,
    }),
    builtin("apps", "v1", {
      resource: "statefulsets",
      kind: "StatefulSet",
      shortNames: ["sts"],
      categories: all,
      status: true,
      scale: true,
    }),
    builtin("discovery.k8s.io", "v1", { resource: "endpointslices", kind: "EndpointSlice" }),
    builtin("coordination.k8s.io", "v1", { resource: "leases", kind: "Lease" }),
    builtin("apiextensions.k8s.io", "v1", {
      resource: "customresourcedefinitions",
      kind: "CustomResourceDefinition",
      namespaced: false,
      shortNames: ["crd", "crds"],
      status: true,
    }),
  ];
}

/** The parts of a CustomResourceDefinition the registry reads (already validated). */
export interface CrdObject {
  metadata: { name: string };
  spec: {
    group: string;
    scope: "Namespaced" | "Cluster";
    names: {
      plural: string;
      singular?: string;
      kind: string;
      listKind?: string;
      shortNames?: string[];
      categories?: string[];
    };
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema?: { openAPIV3Schema?: Record<string, unknown> };
      subresources?: { status?: object; scale?: ScaleSubresource };
      additionalPrinterColumns?: { name: string; type: string; jsonPath: string; description?: string }[];
    }[];
  };
}

export function resourcesOfCrd(crd: CrdObject): ResourceType[] {
  const { names } = crd.spec;
  return crd.spec.versions
    .filter((v) => v.served)
    .map((v) => ({
      group: crd.spec.group,
      version: v.name,
      resource: names.plural,
      singular: names.singular || names.kind.toLowerCase(),
      kind: names.kind,
      listKind: names.listKind || `${names.kind}List`,
      namespaced: crd.spec.scope === "Namespaced",
      shortNames: names.shortNames ?? [],
      categories: names.categories ?? [],
      status: v.subresources?.status !== undefined,
      scale: v.subresources?.scale,
      schema: v.schema?.openAPIV3Schema,
      crdName: crd.metadata.name,
      printerColumns: v.additionalPrinterColumns,
    }));
}

export interface GroupVersions {
  group: string;
  /** Served versions, preferred first. */
  versions: string[];
}

export class ResourceRegistry {
  private readonly builtins = builtinResources();
  private readonly custom = new Map<string, ResourceType[]>();

  all(): ResourceType[] {
    return [...this.builtins, ...[...this.custom.values()].flat()];
  }

  lookup(group: string, version: string, resource: string): ResourceType | undefined {
    return this.all().find((rt) => rt.group === group && rt.version === version && rt.resource === resource);
  }

  /** One type per group+resource (the first served version): for walking everything stored. */
  storedResources(): ResourceType[] {
    const seen = new Set<string>();
    return this.all().filter((rt) => {
      const key = `${rt.group}/${rt.resource}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }

  resourcesOf(group: string, version: string): ResourceType[] {
    return this.all().filter((rt) => rt.group === group && rt.version === version);
  }

  groups(): GroupVersions[] {
    const byGroup = new Map<string, string[]>();
    for (const rt of this.all()) {
      const versions = byGroup.get(rt.group) ?? [];
      if (!versions.includes(rt.version)) versions.push(rt.version);
      byGroup.set(rt.group, versions);
    }
    return [...byGroup.entries()].map(([group, versions]) => ({ group, versions }));
  }

  /** Whether a group+resource other than the CRD itself already claims these names. */
  conflictingNames(crd: CrdObject): string | undefined {
    for (const rt of this.all()) {
      if (rt.crdName === crd.metadata.name || rt.group !== crd.spec.group) continue;
      if (rt.resource === crd.spec.names.plural) return `plural "${rt.resource}" is already in use`;
      if (rt.kind === crd.spec.names.kind) return `kind "${rt.kind}" is already in use`;
    }
    return undefined;
  }

  setCrd(crd: CrdObject): void {
    this.custom.set(crd.metadata.name, resourcesOfCrd(crd));
  }

  removeCrd(name: string): void {
    this.custom.delete(name);
  }
}
