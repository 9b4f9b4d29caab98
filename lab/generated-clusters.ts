import { LabConfigError } from "./config-error.js";
import { type KindCluster, parseKindConfig } from "./kind-config.js";

/**
 * `meshctl lab up --clusters N`: N one-node kind clusters written the way kind-configs/cluster1.yaml
 * is (cluster<i>, pods 10.<i>.0.0/16, services 10.<100+i>.0.0/16, mesh id i by config order), so
 * `--clusters 2` is the two demo clusters without their workers. Generated as kind YAML and read by
 * the same parser as a --config file: one validation path. Pure.
 */
export const MAX_GENERATED_CLUSTERS = 99;

export const GENERATED_SOURCE = "--clusters";

export function generatedKindConfig(index: number): string {
  return [
    "kind: Cluster",
    "apiVersion: kind.x-k8s.io/v1alpha4",
    `name: cluster${index}`,
    "nodes:",
    "  - role: control-plane",
    "networking:",
    "  disableDefaultCNI: true",
    "  kubeProxyMode: none",
    `  podSubnet: 10.${index}.0.0/16`,
    `  serviceSubnet: 10.${100 + index}.0.0/16`,
    "",
  ].join("\n");
}

export function generatedClusters(count: number): KindCluster[] {
  if (!Number.isInteger(count) || count < 1 || count > MAX_GENERATED_CLUSTERS) {
    throw new LabConfigError(
      GENERATED_SOURCE,
      "",
      `must be a whole number 1..${MAX_GENERATED_CLUSTERS} (got ${count}); for other layouts give kind configs with --config`,
    );
  }
  return Array.from({ length: count }, (_, i) =>
    parseKindConfig(`${GENERATED_SOURCE} (cluster${i + 1})`, generatedKindConfig(i + 1)),
  );
}
