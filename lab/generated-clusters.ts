import { parseCidr } from "../lib/cidr.js";
import { LabConfigError } from "./config-error.js";
import { type KindCluster, parseKindConfig } from "./kind-config.js";
import type { MeshFile } from "./mesh-file.js";

/**
 * `meshctl lab up --clusters N`: N one-node kind clusters laid out as kind-configs/cluster1.yaml is
 * (cluster<i>, pods 10.<j>.0.0/16, services 10.<100+j>.0.0/16, mesh id i), where j is the i-th slot
 * the host does not route yet and the node subnet the first free 172.30.<k>.0/24 — so a generated
 * lab comes up beside another lab (kind picks free docker networks the same way). Generated as kind
 * YAML and read by the same parser as a --config file: one validation path. Pure.
 */
export const MAX_GENERATED_CLUSTERS = 99;

export const GENERATED_SOURCE = "--clusters";

export function generatedKindConfig(index: number, slot: number): string {
  return [
    "kind: Cluster",
    "apiVersion: kind.x-k8s.io/v1alpha4",
    `name: cluster${index}`,
    "nodes:",
    "  - role: control-plane",
    "networking:",
    "  disableDefaultCNI: true",
    "  kubeProxyMode: none",
    `  podSubnet: 10.${slot}.0.0/16`,
    `  serviceSubnet: 10.${100 + slot}.0.0/16`,
    "",
  ].join("\n");
}

/** The generated clusters and the mesh file with the node subnet filled in when it gave none. */
export function generatedLab(
  count: number,
  mesh: MeshFile,
  /** Whether the host leaves this prefix to the lab (no route overlaps it). */
  free: (cidr: string) => boolean,
): { clusters: KindCluster[]; mesh: MeshFile } {
  if (!Number.isInteger(count) || count < 1 || count > MAX_GENERATED_CLUSTERS) {
    throw new LabConfigError(
      GENERATED_SOURCE,
      "",
      `must be a whole number 1..${MAX_GENERATED_CLUSTERS} (got ${count}); for other layouts give kind configs with --config`,
    );
  }
  const slots: number[] = [];
  for (let slot = 1; slot <= MAX_GENERATED_CLUSTERS && slots.length < count; slot++)
    if (free(`10.${slot}.0.0/16`) && free(`10.${100 + slot}.0.0/16`)) slots.push(slot);
  if (slots.length < count)
    throw new LabConfigError(
      GENERATED_SOURCE,
      "",
      `only ${slots.length} of 10.1-99.0.0/16 (pods) with 10.101-199.0.0/16 (services) are free of host routes, ${count} needed; remove other labs or give kind configs with --config`,
    );
  const clusters = slots.map((slot, i) =>
    parseKindConfig(`${GENERATED_SOURCE} (cluster${i + 1})`, generatedKindConfig(i + 1, slot)),
  );
  if (mesh.nodeSubnet) return { clusters, mesh };
  for (let k = 30 * 256; k < 32 * 256; k++) {
    const subnet = `172.${k >> 8}.${k & 255}.0/24`;
    if (free(subnet)) return { clusters, mesh: { ...mesh, nodeSubnet: parseCidr(subnet) } };
  }
  throw new LabConfigError(
    GENERATED_SOURCE,
    "",
    "no free node subnet in 172.30.0.0/15; give one with --mesh (nodeSubnet)",
  );
}
