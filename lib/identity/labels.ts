/**
 * Security labels, as Cilium has them (https://github.com/cilium/cilium/blob/main/pkg/labels/labels.go),
 * and the parts of the numeric identity space every program needs to read an identity
 * (https://github.com/cilium/cilium/blob/main/pkg/identity/numericidentity.go). Pure; shared by the
 * agent (which computes a pod's labels and allocates its identity) and the policy resolver and
 * `meshctl policy trace` (which match selectors against them).
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
/** Source of the labels of reserved identities (`reserved:host`, `reserved:world`, …). */
export const RESERVED_SOURCE = "reserved";
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

/** cluster id bits 16–23 of a 24-bit identity (ClusterIDMax 255). */
export const CLUSTER_ID_SHIFT = 16;

export interface PodLabelInputs {
  namespace: string;
  podLabels?: Record<string, string>;
  namespaceLabels?: Record<string, string>;
  serviceAccount?: string;
  clusterName: string;
}

const byKey = ([a]: [string, string], [b]: [string, string]) => (a < b ? -1 : a > b ? 1 : 0);

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
  return new Map([...labels].sort(byKey));
}

export function identityKey(labels: SecurityLabels): string {
  return [...labels]
    .sort(byKey)
    .map(([key, value]) => `${key}=${value};`)
    .join("");
}

export function labelList(labels: SecurityLabels): string[] {
  return [...labels].map(([key, value]) => `${key}=${value}`);
}

/**
 * The inverse of labelList: `k8s:app=x` → ("k8s:app", "x"); a label without `=` has the empty
 * value (`reserved:host`). A label without a source gets `k8s:`, the source of every pod label.
 */
export function parseLabelList(list: readonly string[]): Map<string, string> {
  const labels = new Map<string, string>();
  for (const label of list) {
    const eq = label.indexOf("=");
    const key = eq < 0 ? label : label.slice(0, eq);
    labels.set(key.includes(":") ? key : `${LABEL_SOURCE}:${key}`, eq < 0 ? "" : label.slice(eq + 1));
  }
  return labels;
}

export function clusterIdOf(identity: number): number {
  return (identity >>> CLUSTER_ID_SHIFT) & 0xff;
}
