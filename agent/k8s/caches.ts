/**
 * The agent's watch caches of its cluster's API: what the datapath, the endpoints, the identities
 * and the remote-cluster manager read. Each informer reports the events that matter to the agent
 * through one named callback; what to do about them is the composition root's wiring.
 */
import {
  CoreV1Api,
  CustomObjectsApi,
  DiscoveryV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  NetworkingV1Api,
  type V1ConfigMap,
  type V1EndpointSlice,
  type V1Namespace,
  type V1NetworkPolicy,
  type V1Node,
  type V1Pod,
  type V1Secret,
  type V1Service,
} from "@kubernetes/client-node";
import {
  MESH_GROUP,
  MESH_VERSION,
  type MeshEndpoint,
  type MeshIdentity,
  NODE_LABEL,
} from "../../lib/api/crds.js";
import { MESH_NAMESPACE } from "../../lib/api/rbac.js";
import { MeshObjects } from "../../lib/clustermesh/resources.js";
import { type Informer, startInformer } from "../../lib/k8s/informer.js";
import type { Logger } from "../../lib/log.js";
import type { MeshApi } from "./mesh-api.js";
import { onProjectionChange } from "./relevant-change.js";

export interface AgentCaches {
  nodes: Informer<V1Node>;
  services: Informer<V1Service>;
  endpointSlices: Informer<V1EndpointSlice>;
  /** This node's pods only. */
  pods: Informer<V1Pod>;
  namespaces: Informer<V1Namespace>;
  identities: Informer<MeshIdentity & KubernetesObject>;
  meshEndpoints: Informer<MeshEndpoint & KubernetesObject>;
  /** kube-system Secrets and ConfigMaps: the mesh's remote-cluster configuration. */
  meshSecrets: Informer<V1Secret>;
  meshConfigMaps: Informer<V1ConfigMap>;
  /** Network policies: Kubernetes' and Cilium's (agent/policy/ parses them). */
  networkPolicies: Informer<V1NetworkPolicy>;
  ciliumNetworkPolicies: Informer<KubernetesObject>;
  ciliumClusterwideNetworkPolicies: Informer<KubernetesObject>;
}

/** cilium.io/v2, the API group and version of CiliumNetworkPolicy and CiliumClusterwideNetworkPolicy. */
export const CILIUM_POLICY_API = { group: "cilium.io", version: "v2" } as const;

export interface CacheEvents {
  /** A Service or EndpointSlice changed, a Node's name, address or pod CIDRs changed, or one was relisted. */
  datapathInputChanged(): void;
  /** One of this node's pods was deleted, or a relist may have dropped some. */
  podsDeleted(): void;
  /** One of this node's pods or a namespace changed (labels: endpoint identities may change). */
  podLabelsMayHaveChanged(): void;
  /** A MeshEndpoint changed; `ours`: it is (or may be, after a relist) one this node publishes. */
  meshEndpointsChanged(ours: boolean): void;
  /** The Secrets naming the remote clusters changed, or were relisted. */
  remoteClustersConfigChanged(): void;
  /** A network policy, namespace or identity changed, or was relisted. */
  policyInputChanged(): void;
}

export interface CacheOptions {
  kubeConfig: KubeConfig;
  meshApi: MeshApi;
  nodeName: string;
  events: CacheEvents;
  log: Logger;
}

/** What the agent reads of a Node, comparable. */
export function nodeAddressing(node: V1Node): string {
  return JSON.stringify([node.status?.addresses ?? [], node.spec?.podCIDRs ?? [], node.spec?.podCIDR ?? ""]);
}

export function startAgentCaches({ kubeConfig, meshApi, nodeName, events, log }: CacheOptions): AgentCaches {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const discovery = kubeConfig.makeApiClient(DiscoveryV1Api);
  const networking = kubeConfig.makeApiClient(NetworkingV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const policyInput = {
    onChange: () => events.policyInputChanged(),
    onListed: () => events.policyInputChanged(),
  };
  const { group, version } = CILIUM_POLICY_API;
  const common = { kubeConfig, log };
  const datapathInput = {
    onChange: () => events.datapathInputChanged(),
    onListed: () => events.datapathInputChanged(),
  };
  const ownPods = `spec.nodeName=${nodeName}`;
  return {
    nodes: startInformer<V1Node>({
      ...common,
      ...datapathInput,
      // the datapath reads a Node's addresses and pod CIDRs (agent/datapath/desired.ts, nodeInfo):
      // status heartbeats are not news
      onChange: onProjectionChange(nodeAddressing, events.datapathInputChanged),
      name: "nodes",
      path: "/api/v1/nodes",
      list: () => core.listNode(),
    }),
    services: startInformer<V1Service>({
      ...common,
      ...datapathInput,
      name: "services",
      path: "/api/v1/services",
      list: () => core.listServiceForAllNamespaces(),
    }),
    endpointSlices: startInformer<V1EndpointSlice>({
      ...common,
      ...datapathInput,
      name: "endpointslices",
      path: "/apis/discovery.k8s.io/v1/endpointslices",
      list: () => discovery.listEndpointSliceForAllNamespaces(),
    }),
    pods: startInformer<V1Pod>({
      ...common,
      name: "pods",
      path: "/api/v1/pods",
      fieldSelector: ownPods,
      list: () => core.listPodForAllNamespaces({ fieldSelector: ownPods }),
      onChange: (_pod, event) => {
        if (event === "delete") events.podsDeleted();
        else events.podLabelsMayHaveChanged();
      },
      // pods deleted while the watch was down show up as missing from the relist
      onListed: () => events.podsDeleted(),
    }),
    namespaces: startInformer<V1Namespace>({
      ...common,
      onChange: () => {
        events.policyInputChanged();
        events.podLabelsMayHaveChanged();
      },
      onListed: () => events.policyInputChanged(),
      name: "namespaces",
      path: "/api/v1/namespaces",
      list: () => core.listNamespace(),
    }),
    identities: startInformer<MeshIdentity & KubernetesObject>({
      ...common,
      ...policyInput,
      name: "meshidentities",
      path: `/apis/${MESH_GROUP}/${MESH_VERSION}/meshidentities`,
      list: () => meshApi.listIdentities(),
    }),
    meshSecrets: startInformer<V1Secret>({
      ...common,
      name: "mesh-secrets",
      path: `/api/v1/namespaces/${MESH_NAMESPACE}/secrets`,
      list: () => core.listNamespacedSecret({ namespace: MESH_NAMESPACE }),
      onChange: (secret) => {
        const name = secret.metadata?.name;
        if (name === MeshObjects.remotes || name === MeshObjects.remoteCert || name === MeshObjects.localCert)
          events.remoteClustersConfigChanged();
      },
      onListed: () => events.remoteClustersConfigChanged(),
    }),
    meshConfigMaps: startInformer<V1ConfigMap>({
      ...common,
      name: "mesh-configmaps",
      path: `/api/v1/namespaces/${MESH_NAMESPACE}/configmaps`,
      list: () => core.listNamespacedConfigMap({ namespace: MESH_NAMESPACE }),
    }),
    networkPolicies: startInformer<V1NetworkPolicy>({
      ...common,
      ...policyInput,
      name: "networkpolicies",
      path: "/apis/networking.k8s.io/v1/networkpolicies",
      list: () => networking.listNetworkPolicyForAllNamespaces(),
    }),
    // Cilium's policy CRDs may not be installed: they list as empty until they are
    ciliumNetworkPolicies: startInformer<KubernetesObject>({
      ...common,
      ...policyInput,
      name: "ciliumnetworkpolicies",
      path: `/apis/${group}/${version}/ciliumnetworkpolicies`,
      list: () =>
        custom.listCustomObjectForAllNamespaces({
          group,
          version,
          plural: "ciliumnetworkpolicies",
        }) as Promise<KubernetesListObject<KubernetesObject>>,
      notServedAsEmpty: true,
    }),
    ciliumClusterwideNetworkPolicies: startInformer<KubernetesObject>({
      ...common,
      ...policyInput,
      name: "ciliumclusterwidenetworkpolicies",
      path: `/apis/${group}/${version}/ciliumclusterwidenetworkpolicies`,
      list: () =>
        custom.listClusterCustomObject({
          group,
          version,
          plural: "ciliumclusterwidenetworkpolicies",
        }) as Promise<KubernetesListObject<KubernetesObject>>,
      notServedAsEmpty: true,
    }),
    meshEndpoints: startInformer<MeshEndpoint & KubernetesObject>({
      ...common,
      name: "meshendpoints",
      path: `/apis/${MESH_GROUP}/${MESH_VERSION}/meshendpoints`,
      list: () => meshApi.listEndpoints(),
      // someone else changed or deleted one of ours: the publisher puts it back
      onChange: (endpoint) =>
        events.meshEndpointsChanged(endpoint.metadata.labels?.[NODE_LABEL] === nodeName),
      onListed: () => events.meshEndpointsChanged(true),
    }),
  };
}

function all(caches: AgentCaches): Informer<KubernetesObject>[] {
  return Object.values(caches);
}

/** Per informer: has it applied its first list? */
export function cacheSyncState(caches: AgentCaches | undefined): Record<string, boolean> {
  return Object.fromEntries(caches ? all(caches).map((c) => [c.name, c.synced()]) : []);
}

export function cachesSynced(caches: AgentCaches): boolean {
  return all(caches).every((c) => c.synced());
}

export async function stopCaches(caches: AgentCaches | undefined): Promise<void> {
  if (caches) await Promise.all(all(caches).map((c) => c.stop()));
}
