import { parse } from "yaml";
import { type Cidr, parseCidrList } from "../lib/cidr.js";
import { clusterNameProblem } from "../lib/clustermesh/cluster-name.js";
import { LabConfigError } from "./config-error.js";

export type NodeRole = "control-plane" | "worker";

export interface KindNode {
  role: NodeRole;
  labels: Record<string, string>;
}

/** The parts of a kind `Cluster` (kind.x-k8s.io/v1alpha4) the lab uses to shape a cluster. */
export interface KindCluster {
  file: string;
  name: string;
  nodes: KindNode[];
  podSubnets: Cidr[];
  serviceSubnets: Cidr[];
  disableDefaultCNI: boolean;
  kubeProxyMode: "iptables" | "ipvs" | "nftables" | "none";
}

// kind's own defaults (pkg/apis/config/v1alpha4/default.go).
const DEFAULT_POD_SUBNET = "10.244.0.0/16";
const DEFAULT_SERVICE_SUBNET = "10.96.0.0/16";

// Fields kind accepts that the lab does not act on; anything else is a typo kind itself would reject.
const TOP_LEVEL_FIELDS = new Set([
  "kind",
  "apiVersion",
  "name",
  "nodes",
  "networking",
  "featureGates",
  "runtimeConfig",
  "kubeadmConfigPatches",
  "kubeadmConfigPatchesJSON6902",
  "containerdConfigPatches",
  "containerdConfigPatchesJSON6902",
]);
const NODE_FIELDS = new Set([
  "role",
  "image",
  "labels",
  "extraMounts",
  "extraPortMappings",
  "kubeadmConfigPatches",
  "kubeadmConfigPatchesJSON6902",
]);
const NETWORKING_FIELDS = new Set([
  "ipFamily",
  "apiServerAddress",
  "apiServerPort",
  "podSubnet",
  "serviceSubnet",
  "disableDefaultCNI",
  "kubeProxyMode",
  "dnsSearch",
]);
const KUBE_PROXY_MODES = ["iptables", "ipvs", "nftables", "none"] as const;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function rejectUnknown(
  file: string,
  prefix: string,
  value: Record<string, unknown>,
  known: Set<string>,
): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) {
      throw new LabConfigError(file, `${prefix}${key}`, "unknown field (kind would reject it too)");
    }
  }
}

function subnets(file: string, field: string, value: unknown, fallback: string): Cidr[] {
  if (value === undefined) return parseCidrList(fallback);
  if (typeof value !== "string")
    throw new LabConfigError(file, field, "must be a CIDR string such as 10.1.0.0/16");
  try {
    const list = parseCidrList(value);
    if (list.length === 0) throw new Error("is empty");
    return list;
  } catch (error) {
    throw new LabConfigError(file, field, (error as Error).message, { cause: error });
  }
}

export function parseKindConfig(file: string, text: string): KindCluster {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw new LabConfigError(file, "", `not valid YAML: ${(error as Error).message.split("\n")[0]}`, {
      cause: error,
    });
  }
  if (!isObject(doc)) throw new LabConfigError(file, "", "expected a kind Cluster object");
  if (doc.kind !== "Cluster")
    throw new LabConfigError(file, "kind", `must be "Cluster", got ${JSON.stringify(doc.kind)}`);
  if (doc.apiVersion !== "kind.x-k8s.io/v1alpha4") {
    throw new LabConfigError(
      file,
      "apiVersion",
      `must be "kind.x-k8s.io/v1alpha4", got ${JSON.stringify(doc.apiVersion)}`,
    );
  }
  rejectUnknown(file, "", doc, TOP_LEVEL_FIELDS);

  const nameProblem = clusterNameProblem(doc.name);
  if (nameProblem) throw new LabConfigError(file, "name", nameProblem);
  const name = doc.name as string;

  const rawNodes = doc.nodes ?? [{ role: "control-plane" }];
  if (!Array.isArray(rawNodes) || rawNodes.length === 0) {
    throw new LabConfigError(file, "nodes", "must be a non-empty list of nodes");
  }
  const nodes = rawNodes.map((node, index): KindNode => {
    const at = `nodes[${index}]`;
    if (!isObject(node)) throw new LabConfigError(file, at, "must be an object with a role");
    rejectUnknown(file, `${at}.`, node, NODE_FIELDS);
    const role = node.role ?? "control-plane";
    if (role !== "control-plane" && role !== "worker") {
      throw new LabConfigError(
        file,
        `${at}.role`,
        `unknown role ${JSON.stringify(role)} (expected control-plane or worker)`,
      );
    }
    const labels = node.labels ?? {};
    if (!isObject(labels) || Object.values(labels).some((v) => typeof v !== "string")) {
      throw new LabConfigError(file, `${at}.labels`, "must map label names to string values");
    }
    return { role, labels: labels as Record<string, string> };
  });
  const controlPlanes = nodes.filter((node) => node.role === "control-plane").length;
  if (controlPlanes !== 1) {
    throw new LabConfigError(
      file,
      "nodes",
      `the lab needs exactly one control-plane node, found ${controlPlanes} (HA control planes are not emulated)`,
    );
  }

  const networking = doc.networking ?? {};
  if (!isObject(networking)) throw new LabConfigError(file, "networking", "must be an object");
  rejectUnknown(file, "networking.", networking, NETWORKING_FIELDS);
  const kubeProxyMode = networking.kubeProxyMode ?? "iptables";
  if (!KUBE_PROXY_MODES.includes(kubeProxyMode as (typeof KUBE_PROXY_MODES)[number])) {
    throw new LabConfigError(
      file,
      "networking.kubeProxyMode",
      `unknown mode ${JSON.stringify(kubeProxyMode)} (expected ${KUBE_PROXY_MODES.join(", ")})`,
    );
  }
  const disableDefaultCNI = networking.disableDefaultCNI ?? false;
  if (typeof disableDefaultCNI !== "boolean") {
    throw new LabConfigError(file, "networking.disableDefaultCNI", "must be true or false");
  }

  return {
    file,
    name,
    nodes,
    podSubnets: subnets(file, "networking.podSubnet", networking.podSubnet, DEFAULT_POD_SUBNET),
    serviceSubnets: subnets(
      file,
      "networking.serviceSubnet",
      networking.serviceSubnet,
      DEFAULT_SERVICE_SUBNET,
    ),
    disableDefaultCNI,
    kubeProxyMode: kubeProxyMode as KindCluster["kubeProxyMode"],
  };
}
