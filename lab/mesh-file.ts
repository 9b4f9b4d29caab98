import { parse } from "yaml";
import { type Cidr, parseCidr } from "../lib/cidr.js";
import { LabConfigError } from "./config-error.js";

/**
 * `mesh.yaml` beside the kind configs: what kind has no field for. Optional; without it cluster ids
 * are assigned in the order the configs are given and the node subnet is the default.
 *
 *   nodeSubnet: 172.30.0.0/24      # the lab bridge network (kind's "docker network")
 *   clusters:
 *     cluster1: { id: 1 }
 *     cluster2: { id: 2 }
 */
export interface MeshFile {
  file?: string;
  nodeSubnet?: Cidr;
  clusterIds: Map<string, number>;
}

export const MAX_CLUSTER_ID = 255;

export function parseMeshFile(file: string, text: string): MeshFile {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw new LabConfigError(file, "", `not valid YAML: ${(error as Error).message.split("\n")[0]}`, {
      cause: error,
    });
  }
  doc ??= {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new LabConfigError(file, "", "expected a mapping");
  const { nodeSubnet, clusters, ...rest } = doc as Record<string, unknown>;
  for (const key of Object.keys(rest))
    throw new LabConfigError(file, key, "unknown field (expected nodeSubnet, clusters)");

  const result: MeshFile = { file, clusterIds: new Map() };
  if (nodeSubnet !== undefined) {
    try {
      result.nodeSubnet = parseCidr(String(nodeSubnet));
    } catch (error) {
      throw new LabConfigError(file, "nodeSubnet", (error as Error).message, { cause: error });
    }
    if (result.nodeSubnet.family !== 4 || result.nodeSubnet.prefixLength > 28) {
      throw new LabConfigError(file, "nodeSubnet", "must be an IPv4 subnet of at least /28");
    }
  }
  if (clusters !== undefined) {
    if (typeof clusters !== "object" || clusters === null || Array.isArray(clusters)) {
      throw new LabConfigError(file, "clusters", "must map cluster names to { id: <1..255> }");
    }
    const seen = new Map<number, string>();
    for (const [name, entry] of Object.entries(clusters)) {
      const id = (entry as { id?: unknown } | null)?.id;
      if (!Number.isInteger(id) || (id as number) < 1 || (id as number) > MAX_CLUSTER_ID) {
        throw new LabConfigError(file, `clusters.${name}.id`, `must be an integer 1..${MAX_CLUSTER_ID}`);
      }
      const other = seen.get(id as number);
      if (other)
        throw new LabConfigError(file, `clusters.${name}.id`, `${id} is already the id of cluster ${other}`);
      seen.set(id as number, name);
      result.clusterIds.set(name, id as number);
    }
  }
  return result;
}
