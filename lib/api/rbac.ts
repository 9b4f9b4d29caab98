/**
 * Who each mesh component is in a cluster's API server and the least it may do there: one
 * ServiceAccount per component, a ClusterRole for what it reads or writes cluster-wide, and a Role
 * in the mesh namespace for Secrets and ConfigMaps (never Secrets cluster-wide). The lab and the
 * install manifests both apply these; a test asks the real API server (`auth can-i`) that nothing
 * more is granted. Shaped like Cilium's agent and clustermesh-apiserver roles
 * (https://github.com/cilium/cilium/tree/v1.18.4/install/kubernetes/cilium/templates).
 */
import type {
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1PolicyRule,
  V1Role,
  V1RoleBinding,
  V1ServiceAccount,
} from "@kubernetes/client-node";
import { MESH_GROUP, MeshResource } from "./crds.js";
import { HubbleObjects } from "./hubble.js";

/** Where the mesh's components, Secrets and ConfigMaps live (as Cilium's kube-system). */
export const MESH_NAMESPACE = "kube-system";

export interface ComponentAccess {
  /** ServiceAccount name in MESH_NAMESPACE; also the ClusterRole's and Role's name. */
  name: string;
  clusterRules: V1PolicyRule[];
  /** Rules in MESH_NAMESPACE only. */
  namespaceRules: V1PolicyRule[];
}

const READ = ["get", "list", "watch"];
const meshPlurals = Object.values(MeshResource).map((r) => r.plural);

export const MESH_ACCESS = {
  /** The per-node agent: reads what it routes and balances, publishes its node, endpoints, identities. */
  agent: {
    name: "clustermesh-agent",
    clusterRules: [
      { apiGroups: [""], resources: ["nodes", "services", "pods", "namespaces"], verbs: READ },
      // the WireGuard public key annotation on its own Node, as Cilium's agent sets it
      { apiGroups: [""], resources: ["nodes"], verbs: ["patch"] },
      { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: READ },
      // network policies it enforces (agent/policy/): read only
      { apiGroups: ["networking.k8s.io"], resources: ["networkpolicies"], verbs: READ },
      {
        apiGroups: ["cilium.io"],
        resources: ["ciliumnetworkpolicies", "ciliumclusterwidenetworkpolicies"],
        verbs: READ,
      },
      // their Valid condition (lib/policy/status.ts), on the status subresource only
      {
        apiGroups: ["cilium.io"],
        resources: ["ciliumnetworkpolicies/status", "ciliumclusterwidenetworkpolicies/status"],
        verbs: ["patch"],
      },
      { apiGroups: [MESH_GROUP], resources: meshPlurals, verbs: [...READ, "create", "update", "delete"] },
      // the agent creates the mesh's CRDs when they are missing (kind/lab without an operator)
      {
        apiGroups: ["apiextensions.k8s.io"],
        resources: ["customresourcedefinitions"],
        verbs: ["get", "create"],
      },
    ],
    namespaceRules: [{ apiGroups: [""], resources: ["secrets", "configmaps"], verbs: READ }],
  },
  /** Publishes this cluster's services, nodes, identities and endpoints into its etcd: read only. */
  clustermeshApiserver: {
    name: "clustermesh-apiserver",
    clusterRules: [
      { apiGroups: [""], resources: ["nodes", "services", "namespaces"], verbs: READ },
      { apiGroups: ["discovery.k8s.io"], resources: ["endpointslices"], verbs: READ },
      { apiGroups: [MESH_GROUP], resources: meshPlurals, verbs: READ },
    ],
    // the Hubble relay's peers (other clusters' relays, written by `clustermesh connect`); its
    // certificates are mounted Secrets, which need no grant
    namespaceRules: [
      { apiGroups: [""], resources: ["configmaps"], resourceNames: [HubbleObjects.relayPeers], verbs: READ },
      // KVStoreMesh: the remotes `clustermesh connect` records and this cluster's client
      // certificate for them (lib/clustermesh/resources.ts MeshObjects.kvstoremesh, .remoteCert)
      {
        apiGroups: [""],
        resources: ["secrets"],
        resourceNames: ["clustermesh-kvstoremesh", "clustermesh-apiserver-remote-cert"],
        verbs: ["get"],
      },
    ],
  },
} as const satisfies Record<string, ComponentAccess>;

/** The user name a ServiceAccount's credentials authenticate as (what RBAC subjects match). */
export function serviceAccountUser(access: Pick<ComponentAccess, "name">): string {
  return `system:serviceaccount:${MESH_NAMESPACE}:${access.name}`;
}

export type RbacObject = V1ServiceAccount | V1ClusterRole | V1ClusterRoleBinding | V1Role | V1RoleBinding;

const LABELS = { "app.kubernetes.io/part-of": "clustermesh" };

/** ServiceAccount, ClusterRole(+Binding) and, when it has namespace rules, Role(+Binding). */
export function rbacObjects(access: ComponentAccess): RbacObject[] {
  const namespace = MESH_NAMESPACE;
  const subjects = [{ kind: "ServiceAccount", name: access.name, namespace }];
  const objects: RbacObject[] = [
    {
      apiVersion: "v1",
      kind: "ServiceAccount",
      metadata: { name: access.name, namespace, labels: LABELS },
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRole",
      metadata: { name: access.name, labels: LABELS },
      rules: access.clusterRules.map((rule) => ({ ...rule })),
    },
    {
      apiVersion: "rbac.authorization.k8s.io/v1",
      kind: "ClusterRoleBinding",
      metadata: { name: access.name, labels: LABELS },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: access.name },
      subjects,
    },
  ];
  if (access.namespaceRules.length > 0)
    objects.push(
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "Role",
        metadata: { name: access.name, namespace, labels: LABELS },
        rules: access.namespaceRules.map((rule) => ({ ...rule })),
      },
      {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "RoleBinding",
        metadata: { name: access.name, namespace, labels: LABELS },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: access.name },
        subjects,
      },
    );
  return objects;
}
