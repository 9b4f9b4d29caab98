/** Cilium's cluster name rules (pkg/clustermesh/types): they end up in etcd keys, users and DNS names. */
const CLUSTER_NAME = /^([a-z0-9][-a-z0-9]*)?[a-z0-9]$/;
export const MAX_CLUSTER_NAME_LENGTH = 32;

export function clusterNameProblem(name: unknown): string | undefined {
  if (typeof name !== "string" || name === "") return "is required (a non-empty string)";
  if (name.length > MAX_CLUSTER_NAME_LENGTH)
    return `"${name}" is longer than ${MAX_CLUSTER_NAME_LENGTH} characters`;
  if (!CLUSTER_NAME.test(name)) {
    return `"${name}" must consist of lower-case letters, digits and '-', and start and end with a letter or digit`;
  }
  return undefined;
}
