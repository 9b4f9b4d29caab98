/**
 * Server-side printing: what `kubectl get` shows. kubectl asks for `application/json;as=Table;…`;
 * the answer is a meta.k8s.io/v1 Table whose columns follow kube-apiserver's printers for the
 * kinds the lab serves (priority 1 columns appear with `-o wide`).
 */
import type { KubeObject } from "./objects.js";
import type { ResourceType } from "./registry.js";

interface Column {
  name: string;
  type: "string" | "integer" | "date";
  format?: string;
  priority?: number;
  description: string;
  cell: (object: KubeObject) => string | number;
}

export function wantsTable(accept: string | undefined): boolean {
  return Boolean(accept?.split(",").some((part) => /as=Table/.test(part) && /g=meta\.k8s\.io/.test(part)));
}

export function age(timestamp: string | undefined, now = Date.now()): string {
  if (!timestamp) return "<unknown>";
  const seconds = Math.max(0, Math.floor((now - Date.parse(timestamp)) / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return `${minutes}m${seconds % 60 ? `${seconds % 60}s` : ""}`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}

const name: Column = {
  name: "Name",
  type: "string",
  format: "name",
  description: "Name",
  cell: (o) => o.metadata.name ?? "",
};
const ageColumn: Column = {
  name: "Age",
  type: "string",
  description: "Time since creation",
  cell: (o) => age(o.metadata.creationTimestamp as string | undefined),
};

type Status = Record<string, unknown> & {
  phase?: string;
  conditions?: { type: string; status: string; reason?: string }[];
  containerStatuses?: {
    ready?: boolean;
    restartCount?: number;
    state?: { waiting?: { reason?: string }; terminated?: { reason?: string } };
  }[];
  podIP?: string;
  addresses?: { type: string; address: string }[];
  nodeInfo?: { kubeletVersion?: string };
  replicas?: number;
  readyReplicas?: number;
  updatedReplicas?: number;
  availableReplicas?: number;
  loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] };
};

const status = (o: KubeObject) => (o.status ?? {}) as Status;

function podStatus(o: KubeObject): string {
  if (o.metadata.deletionTimestamp) return "Terminating";
  for (const container of status(o).containerStatuses ?? []) {
    const reason = container.state?.waiting?.reason ?? container.state?.terminated?.reason;
    if (reason) return reason;
  }
  return status(o).phase ?? "Pending";
}

function servicePorts(o: KubeObject): string {
  const ports = (o.spec?.ports ?? []) as { port: number; nodePort?: number; protocol?: string }[];
  if (ports.length === 0) return "<none>";
  return ports.map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ""}/${p.protocol ?? "TCP"}`).join(",");
}

function nodeRoles(o: KubeObject): string {
  const roles = Object.keys(o.metadata.labels ?? {})
    .filter((key) => key.startsWith("node-role.kubernetes.io/"))
    .map((key) => key.slice("node-role.kubernetes.io/".length));
  return roles.length ? roles.join(",") : "<none>";
}

function nodeReady(o: KubeObject): string {
  const ready = status(o).conditions?.find((c) => c.type === "Ready");
  const text = ready?.status === "True" ? "Ready" : "NotReady";
  return o.spec?.unschedulable ? `${text},SchedulingDisabled` : text;
}

const COLUMNS: Record<string, Column[]> = {
  pods: [
    name,
    {
      name: "Ready",
      type: "string",
      description: "Ready containers",
      cell: (o) =>
        `${(status(o).containerStatuses ?? []).filter((c) => c.ready).length}/${(o.spec?.containers ?? []).length}`,
    },
    { name: "Status", type: "string", description: "Pod status", cell: podStatus },
    {
      name: "Restarts",
      type: "integer",
      description: "Container restarts",
      cell: (o) => (status(o).containerStatuses ?? []).reduce((sum, c) => sum + (c.restartCount ?? 0), 0),
    },
    ageColumn,
    {
      name: "IP",
      type: "string",
      priority: 1,
      description: "Pod IP",
      cell: (o) => status(o).podIP ?? "<none>",
    },
    {
      name: "Node",
      type: "string",
      priority: 1,
      description: "Node",
      cell: (o) => o.spec?.nodeName ?? "<none>",
    },
  ],
  services: [
    name,
    { name: "Type", type: "string", description: "Service type", cell: (o) => o.spec?.type ?? "ClusterIP" },
    {
      name: "Cluster-IP",
      type: "string",
      description: "Cluster IP",
      cell: (o) => o.spec?.clusterIP ?? "<none>",
    },
    {
      name: "External-IP",
      type: "string",
      description: "External IPs",
      cell: (o) =>
        status(o)
          .loadBalancer?.ingress?.map((i) => i.ip ?? i.hostname)
          .join(",") || (o.spec?.type === "LoadBalancer" ? "<pending>" : "<none>"),
    },
    { name: "Port(s)", type: "string", description: "Ports", cell: servicePorts },
    ageColumn,
    {
      name: "Selector",
      type: "string",
      priority: 1,
      description: "Selector",
      cell: (o) =>
        Object.entries((o.spec?.selector ?? {}) as Record<string, string>)
          .map(([k, v]) => `${k}=${v}`)
          .join(",") || "<none>",
    },
  ],
  nodes: [
    name,
    { name: "Status", type: "string", description: "Ready condition", cell: nodeReady },
    { name: "Roles", type: "string", description: "Roles", cell: nodeRoles },
    ageColumn,
    {
      name: "Version",
      type: "string",
      description: "Kubelet version",
      cell: (o) => status(o).nodeInfo?.kubeletVersion ?? "",
    },
    {
      name: "Internal-IP",
      type: "string",
      priority: 1,
      description: "Internal IP",
      cell: (o) => status(o).addresses?.find((a) => a.type === "InternalIP")?.address ?? "<none>",
    },
    {
      name: "Pod-CIDR",
      type: "string",
      priority: 1,
      description: "Pod CIDR",
      cell: (o) => o.spec?.podCIDR ?? "<none>",
    },
  ],
  deployments: [
    name,
    {
      name: "Ready",
      type: "string",
      description: "Ready replicas",
      cell: (o) => `${status(o).readyReplicas ?? 0}/${o.spec?.replicas ?? 1}`,
    },
    {
      name: "Up-to-date",
      type: "integer",
      description: "Updated replicas",
      cell: (o) => status(o).updatedReplicas ?? 0,
    },
    {
      name: "Available",
      type: "integer",
      description: "Available replicas",
      cell: (o) => status(o).availableReplicas ?? 0,
    },
    ageColumn,
  ],
  endpointslices: [
    name,
    {
      name: "AddressType",
      type: "string",
      description: "Address type",
      cell: (o) => String(o.addressType ?? ""),
    },
    {
      name: "Ports",
      type: "string",
      description: "Ports",
      cell: (o) => ((o.ports ?? []) as { port?: number }[]).map((p) => p.port).join(",") || "<unset>",
    },
    {
      name: "Endpoints",
      type: "string",
      description: "Endpoint addresses",
      cell: (o) =>
        ((o.endpoints ?? []) as { addresses: string[] }[]).flatMap((e) => e.addresses).join(",") || "<unset>",
    },
    ageColumn,
  ],
  namespaces: [
    name,
    { name: "Status", type: "string", description: "Phase", cell: (o) => status(o).phase ?? "Active" },
    ageColumn,
  ],
  secrets: [
    name,
    { name: "Type", type: "string", description: "Type", cell: (o) => String(o.type ?? "Opaque") },
    {
      name: "Data",
      type: "integer",
      description: "Keys",
      cell: (o) => Object.keys((o.data ?? {}) as object).length,
    },
    ageColumn,
  ],
  configmaps: [
    name,
    {
      name: "Data",
      type: "integer",
      description: "Keys",
      cell: (o) => Object.keys((o.data ?? {}) as object).length,
    },
    ageColumn,
  ],
};

function jsonPathCell(object: KubeObject, path: string): string {
  // additionalPrinterColumns use simple JSONPath like .spec.replicas or .status.conditions[0].type
  const segments = path.replace(/^\./, "").split(".").filter(Boolean);
  let value: unknown = object;
  for (const segment of segments) {
    const match = /^([^[]+)(?:\[(\d+)\])?$/.exec(segment);
    if (!match || value === null || typeof value !== "object") return "";
    value = (value as Record<string, unknown>)[match[1]];
    if (match[2] !== undefined) value = Array.isArray(value) ? value[Number(match[2])] : undefined;
  }
  if (value === undefined || value === null) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function columnsFor(rt: ResourceType): Column[] {
  const builtin =
    rt.group === "" || rt.group === "apps" || rt.group === "discovery.k8s.io"
      ? COLUMNS[rt.resource]
      : undefined;
  if (builtin) return builtin;
  const custom = (rt.printerColumns ?? []).map(
    (c): Column => ({
      name: c.name,
      type: c.type === "integer" ? "integer" : "string",
      description: c.description ?? c.name,
      cell: (o) => (c.type === "date" ? age(jsonPathCell(o, c.jsonPath)) : jsonPathCell(o, c.jsonPath)),
    }),
  );
  return [name, ...custom, ageColumn];
}

/** A Table of the given objects (one row each), with their metadata as PartialObjectMetadata. */
export function toTable(
  rt: ResourceType,
  objects: KubeObject[],
  resourceVersion?: string,
): Record<string, unknown> {
  const columns = columnsFor(rt);
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: resourceVersion ? { resourceVersion } : {},
    columnDefinitions: columns.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? "",
      description: c.description,
      priority: c.priority ?? 0,
    })),
    rows: objects.map((object) => ({
      cells: columns.map((c) => c.cell(object)),
      object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: object.metadata },
    })),
  };
}
