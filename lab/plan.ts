import { type Cidr, cidrSize, cidrsOverlap, formatCidr, nthAddress, parseCidr } from "../lib/cidr.js";
import { LabConfigError } from "./config-error.js";
import type { KindCluster, NodeRole } from "./kind-config.js";
import { labNameProblem } from "./lab-name.js";

export { DEFAULT_LAB_NAME, labNameProblem } from "./lab-name.js";

import { MAX_CLUSTER_ID, type MeshFile } from "./mesh-file.js";

export const DEFAULT_NODE_SUBNET = "172.30.0.0/24";

export interface PlannedNode {
  /** kind's node naming: <cluster>-control-plane, <cluster>-worker, <cluster>-worker2, … */
  name: string;
  role: NodeRole;
  labels: Record<string, string>;
  netns: string;
  /** Root-namespace end of the node's veth, enslaved to the lab bridge. */
  hostInterface: string;
  ip: string;
}

export interface PlannedCluster {
  name: string;
  id: number;
  configFile: string;
  podSubnets: string[];
  serviceSubnets: string[];
  kubeProxyMode: string;
  disableDefaultCNI: boolean;
  nodes: PlannedNode[];
  etcdEndpoint: string;
}

export interface SafetyRoute {
  prefix: string;
  /** Why this prefix is in the lab; all of them are blackholed in the root namespace. */
  purpose: string;
}

export interface LabPlan {
  name: string;
  bridge: { name: string; address: string; subnet: string };
  clusters: PlannedCluster[];
  /** Pod and service prefixes: blackholed in the root namespace so they can never leave by the default route. */
  blackholes: SafetyRoute[];
}

function nodeNames(cluster: KindCluster): string[] {
  let workers = 0;
  return cluster.nodes.map((node) => {
    if (node.role === "control-plane") return `${cluster.name}-control-plane`;
    workers++;
    return workers === 1 ? `${cluster.name}-worker` : `${cluster.name}-worker${workers}`;
  });
}

function assignIds(clusters: KindCluster[], mesh: MeshFile): Map<string, number> {
  const ids = new Map<string, number>();
  const used = new Set<number>();
  for (const cluster of clusters) {
    const id = mesh.clusterIds.get(cluster.name);
    if (id !== undefined) {
      ids.set(cluster.name, id);
      used.add(id);
    }
  }
  let next = 1;
  for (const cluster of clusters) {
    if (ids.has(cluster.name)) continue;
    while (used.has(next)) next++;
    if (next > MAX_CLUSTER_ID)
      throw new LabConfigError(mesh.file ?? "mesh", "clusters", "no cluster id left");
    ids.set(cluster.name, next);
    used.add(next);
  }
  return ids;
}

interface NamedPrefix {
  cidr: Cidr;
  source: string;
  field: string;
}

/** Turns kind configs and the mesh file into every name and address the lab will create. Pure. */
export function planLab(labName: string, clusters: KindCluster[], mesh: MeshFile): LabPlan {
  const nameProblem = labNameProblem(labName);
  if (nameProblem) throw new LabConfigError("--name", "", nameProblem);
  if (clusters.length === 0) throw new LabConfigError("--config", "", "at least one kind config is required");

  const seenNames = new Map<string, string>();
  for (const cluster of clusters) {
    const other = seenNames.get(cluster.name);
    if (other) {
      throw new LabConfigError(
        cluster.file,
        "name",
        `cluster name "${cluster.name}" is already used by ${other}`,
      );
    }
    seenNames.set(cluster.name, cluster.file);
  }

  // A mesh file entry no config has would be silently ignored (and ids then assigned in config
  // order): almost always a typo or a forgotten --config.
  for (const name of mesh.clusterIds.keys()) {
    if (!seenNames.has(name)) {
      const configs = clusters.map((cluster) => `${cluster.name} (${cluster.file})`).join(", ");
      throw new LabConfigError(
        mesh.file ?? "mesh",
        `clusters.${name}`,
        `no --config has a cluster named "${name}" (the configs name ${configs}); fix the name or add that cluster's --config`,
      );
    }
  }

  const nodeSubnet = mesh.nodeSubnet ?? parseCidr(DEFAULT_NODE_SUBNET);
  const prefixes: NamedPrefix[] = [
    { cidr: nodeSubnet, source: mesh.file ?? "mesh defaults", field: "nodeSubnet" },
  ];
  for (const cluster of clusters) {
    for (const cidr of cluster.podSubnets) {
      prefixes.push({ cidr, source: cluster.file, field: "networking.podSubnet" });
    }
    for (const cidr of cluster.serviceSubnets) {
      prefixes.push({ cidr, source: cluster.file, field: "networking.serviceSubnet" });
    }
  }
  for (let i = 0; i < prefixes.length; i++) {
    for (let j = 0; j < i; j++) {
      const [mine, theirs] = [prefixes[i], prefixes[j]];
      if (cidrsOverlap(mine.cidr, theirs.cidr)) {
        throw new LabConfigError(
          mine.source,
          mine.field,
          `${formatCidr(mine.cidr)} overlaps ${formatCidr(theirs.cidr)} (${theirs.source}: ${theirs.field}); every cluster needs its own pod and service subnets`,
        );
      }
    }
  }

  const totalNodes = clusters.reduce((sum, cluster) => sum + cluster.nodes.length, 0);
  if (BigInt(totalNodes + 2) > cidrSize(nodeSubnet)) {
    throw new LabConfigError(
      mesh.file ?? "mesh",
      "nodeSubnet",
      `${formatCidr(nodeSubnet)} is too small for ${totalNodes} nodes`,
    );
  }

  const ids = assignIds(clusters, mesh);
  let nodeIndex = 0;
  const planned = clusters.map((cluster): PlannedCluster => {
    const names = nodeNames(cluster);
    const nodes = cluster.nodes.map((node, i): PlannedNode => {
      nodeIndex++;
      return {
        name: names[i],
        role: node.role,
        labels: node.labels,
        netns: `${labName}-${names[i]}`,
        hostInterface: `${labName}-n${nodeIndex}`,
        // .1 is the bridge (the "docker network" gateway); nodes follow in config order.
        ip: nthAddress(nodeSubnet, nodeIndex + 1),
      };
    });
    const controlPlane = nodes.find((node) => node.role === "control-plane");
    return {
      name: cluster.name,
      id: ids.get(cluster.name) as number,
      configFile: cluster.file,
      podSubnets: cluster.podSubnets.map(formatCidr),
      serviceSubnets: cluster.serviceSubnets.map(formatCidr),
      kubeProxyMode: cluster.kubeProxyMode,
      disableDefaultCNI: cluster.disableDefaultCNI,
      nodes,
      etcdEndpoint: `https://${controlPlane?.ip}:2379`,
    };
  });

  return {
    name: labName,
    bridge: {
      name: `${labName}-br`,
      address: `${nthAddress(nodeSubnet, 1)}/${nodeSubnet.prefixLength}`,
      subnet: formatCidr(nodeSubnet),
    },
    clusters: planned,
    blackholes: planned.flatMap((cluster) => [
      ...cluster.podSubnets.map((prefix) => ({ prefix, purpose: `${cluster.name} pods` })),
      ...cluster.serviceSubnets.map((prefix) => ({ prefix, purpose: `${cluster.name} services` })),
    ]),
  };
}

export interface HostRoute {
  dst: string;
  dev?: string;
  table?: string;
}

/** The host route (other than default and link-local ones) that overlaps prefix, if any. */
export function hostRouteOverlapping(routes: HostRoute[], prefix: string): HostRoute | undefined {
  const cidr = parseCidr(prefix);
  return routes.find((route) => {
    if (route.dst === "default" || route.dst.startsWith("fe80") || route.dst.startsWith("ff00")) return false;
    let hostCidr: Cidr;
    try {
      hostCidr = parseCidr(
        route.dst.includes("/") ? route.dst : `${route.dst}/${route.dst.includes(":") ? 128 : 32}`,
      );
    } catch {
      return false;
    }
    return hostCidr.prefixLength !== 0 && cidrsOverlap(cidr, hostCidr);
  });
}

/** Refuses a plan whose prefixes overlap a route the host already has (other than default routes). */
export function checkHostRoutes(plan: LabPlan, routes: HostRoute[], meshFile: string | undefined): void {
  for (const prefix of [plan.bridge.subnet, ...plan.blackholes.map((route) => route.prefix)]) {
    const route = hostRouteOverlapping(routes, prefix);
    if (route) {
      const { source, field } = prefixSource(plan, meshFile, prefix);
      throw new LabConfigError(
        source,
        field,
        `${prefix} overlaps the host route ${route.dst}${route.dev ? ` dev ${route.dev}` : ""}; pick a subnet the host does not use`,
      );
    }
  }
}

function prefixSource(
  plan: LabPlan,
  meshFile: string | undefined,
  prefix: string,
): { source: string; field: string } {
  for (const cluster of plan.clusters) {
    if (cluster.podSubnets.includes(prefix))
      return { source: cluster.configFile, field: "networking.podSubnet" };
    if (cluster.serviceSubnets.includes(prefix))
      return { source: cluster.configFile, field: "networking.serviceSubnet" };
  }
  return { source: meshFile ?? "mesh defaults", field: "nodeSubnet" };
}
