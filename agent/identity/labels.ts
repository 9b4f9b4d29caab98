/**
 * Security labels and the numeric identity space, as Cilium has them (labels: https://github.com/cilium/cilium/blob/main/pkg/labels/labels.go,
 * identity space: https://github.com/cilium/cilium/blob/main/pkg/identity/numericidentity.go). Pure.
 *
 * A pod's security labels, in Cilium's `k8s:` source form:
 *   k8s:<pod label>=<value>                         (minus per-rollout labels, see EXCLUDED_POD_LABELS)
 *   k8s:io.kubernetes.pod.namespace=<namespace>
 *   k8s:io.cilium.k8s.namespace.labels.<key>=<value> (the namespace's labels)
 *   k8s:io.cilium.k8s.policy.serviceaccount=<sa>
 *   k8s:io.cilium.k8s.policy.cluster=<cluster>
 * The identity key is the sorted list `k8s:a=b;k8s:c=d;` (Cilium's SortedList form).
 */

export type SecurityLabels = ReadonlyMap<string, string>;

export const RESERVED_IDENTITY = {
  unknown: 0,
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  remoteNode: 6,
  kubeApiserver: 7,
} as const;

export const LABEL_SOURCE = "k8s";
export const NAMESPACE_LABEL = "io.kubernetes.pod.namespace";
export const NAMESPACE_LABELS_PREFIX = "io.cilium.k8s.namespace.labels.";
export const SERVICE_ACCOUNT_LABEL = "io.cilium.k8s.policy.serviceaccount";
export const CLUSTER_LABEL = "io.cilium.k8s.policy.cluster";
/** Labels that change with every rollout; keeping them would give each ReplicaSet its own identity. */
export const EXCLUDED_POD_LABELS = new Set([
  "pod-template-hash",
  "controller-revision-hash",
  "pod-template-generation",
  "statefulset.kubernetes.io/pod-name",
  "batch.kubernetes.io/controller-uid",
  "controller-uid",
]);
/** Longest identity key accepted; longer label sets are refused (the pod's ADD fails, see identity errors). */
export const MAX_IDENTITY_KEY_LENGTH = 2048;

/** cluster id bits 16–23 of a 24-bit identity (ClusterIDMax 255). */
export const CLUSTER_ID_SHIFT = 16;
export const IDENTITIES_PER_CLUSTER = (1 << CLUSTER_ID_SHIFT) - 1;

export class IdentityKeyTooLongError extends Error {}

export interface PodLabelInputs {
  namespace: string;
  podLabels?: Record<string, string>;
  namespaceLabels?: Record<string, string>;
  serviceAccount?: string;
  clusterName: string;
}

export function securityLabels(inputs: PodLabelInputs): Map<string, string> {
  const labels = new Map<string, string>();
  const add = (key: string, value: string) => labels.set(`${LABEL_SOURCE}:${key}`, value);
  for (const [key, value] of Object.entries(inputs.podLabels ?? {})) {
    if (!EXCLUDED_POD_LABELS.has(key)) add(key, value);
  }
  for (const [key, value] of Object.entries(inputs.namespaceLabels ?? {})) {
    add(`${NAMESPACE_LABELS_PREFIX}${key}`, value);
  }
  add(NAMESPACE_LABEL, inputs.namespace);
  add(SERVICE_ACCOUNT_LABEL, inputs.serviceAccount || "default");
  add(CLUSTER_LABEL, inputs.clusterName);
  return new Map([...labels].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export function identityKey(labels: SecurityLabels): string {
  return [...labels]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value};`)
    .join("");
}

/** Throws when the label set's key is too long to be an identity (logged with the pod by the caller). */
export function checkIdentityKey(key: string): void {
  if (key.length > MAX_IDENTITY_KEY_LENGTH) {
    throw new IdentityKeyTooLongError(
      `security labels make an identity key of ${key.length} characters (limit ${MAX_IDENTITY_KEY_LENGTH})`,
    );
  }
}

export function labelList(labels: SecurityLabels): string[] {
  return [...labels].map(([key, value]) => `${key}=${value}`);
}

export function clusterIdOf(identity: number): number {
  return (identity >>> CLUSTER_ID_SHIFT) & 0xff;
}

export function clusterIdentityRange(clusterId: number): { first: number; last: number } {
  if (!Number.isInteger(clusterId) || clusterId < 1 || clusterId > 255)
    throw new RangeError(`cluster id ${clusterId}`);
  const first = clusterId << CLUSTER_ID_SHIFT;
  return { first, last: first + IDENTITIES_PER_CLUSTER };
}

/** FNV-1a 32-bit: stable across processes and versions, so every agent probes the same ids. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, "utf8")) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash >>> 0;
}

/**
 * The attempt-th candidate id for a key: deterministic, so concurrent agents try the same ids in the
 * same order and converge on one (create-if-absent decides). Never the range's first id (C << 16).
 */
export function candidateIdentity(key: string, clusterId: number, attempt: number): number {
  const { first } = clusterIdentityRange(clusterId);
  return first + 1 + ((fnv1a(key) + attempt) % IDENTITIES_PER_CLUSTER);
}
