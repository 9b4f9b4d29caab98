/**
 * What `meshctl policy trace` does, loaded by ./policy.ts only when it runs: reads the cluster's
 * name (clustermesh-config), its policies of every kind, and the pods and namespaces named, then
 * asks lib/policy/trace.ts.
 */
import { CustomObjectsApi, NetworkingV1Api, type V1Pod } from "@kubernetes/client-node";
import { CILIUM_GROUP, CILIUM_VERSION, PolicyResource } from "../../lib/api/policy-crds.js";
import { MESH_NAMESPACE } from "../../lib/api/rbac.js";
import { MeshObjects, parseConfigMapData } from "../../lib/clustermesh/resources.js";
import { apiErrorMessage, coreApi, isNotFound, readConfigMap } from "../../lib/k8s/client.js";
import { type TraceEndpoint, tracePolicy } from "../../lib/policy/trace.js";
import { UsageError } from "../../lib/usage-error.js";
import { type OutputFormat, printJson } from "../output.js";
import { kubeConfig } from "./clustermesh-actions.js";
import type { EndpointArg } from "./policy-args.js";
import { renderTrace } from "./policy-trace-text.js";

export interface PolicyTraceFlags {
  from: EndpointArg;
  to: EndpointArg;
  dport?: { port: number; protocol: number; text: string };
  fromCluster?: string;
  toCluster?: string;
  context: string;
  kubeconfig?: string;
  format: OutputFormat;
}

function namedPorts(pod: V1Pod) {
  return (pod.spec?.containers ?? []).flatMap((c) =>
    (c.ports ?? [])
      .filter((p) => p.name)
      .map((p) => ({ name: p.name as string, port: p.containerPort, protocol: p.protocol ?? "TCP" })),
  );
}

export async function policyTrace(flags: PolicyTraceFlags): Promise<void> {
  const kc = kubeConfig(flags.context, flags.kubeconfig);
  const core = coreApi(kc);
  let clusterName: string;
  try {
    const config = await readConfigMap(core, MeshObjects.config);
    if (!config)
      throw new UsageError(
        `--context ${flags.context}: no ConfigMap ${MESH_NAMESPACE}/${MeshObjects.config}: the mesh is not installed there (meshctl install)`,
      );
    clusterName = parseConfigMapData(
      config.data,
      `ConfigMap ${MESH_NAMESPACE}/${MeshObjects.config}`,
    ).clusterName;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new Error(`cannot read the cluster's mesh settings: ${apiErrorMessage(error)}`, { cause: error });
  }

  const namespaceLabels = async (namespace: string) => {
    try {
      return (await core.readNamespace({ name: namespace })).metadata?.labels ?? {};
    } catch (error) {
      if (isNotFound(error)) return { "kubernetes.io/metadata.name": namespace };
      throw error;
    }
  };
  const endpoint = async (
    flag: string,
    arg: EndpointArg,
    cluster: string | undefined,
  ): Promise<TraceEndpoint> => {
    const inCluster = cluster ?? clusterName;
    if (arg.type === "address") return arg;
    if (arg.type === "pod") {
      if (inCluster !== clusterName)
        throw new UsageError(
          `${flag}: a pod of cluster ${inCluster} cannot be read through --context ${flags.context}; give its labels (app=x,io.kubernetes.pod.namespace=ns)`,
        );
      let pod: V1Pod;
      try {
        pod = await core.readNamespacedPod({ name: arg.pod, namespace: arg.namespace });
      } catch (error) {
        if (isNotFound(error))
          throw new UsageError(`${flag}: no pod ${arg.namespace}/${arg.pod} in --context ${flags.context}`);
        throw error;
      }
      return {
        type: "pod",
        cluster: inCluster,
        namespace: arg.namespace,
        name: `${arg.namespace}/${arg.pod}`,
        labels: pod.metadata?.labels ?? {},
        namespaceLabels: await namespaceLabels(arg.namespace),
        serviceAccount: pod.spec?.serviceAccountName,
        namedPorts: namedPorts(pod),
      };
    }
    const given = Object.keys(arg.namespaceLabels).length > 0;
    return {
      type: "pod",
      cluster: inCluster,
      namespace: arg.namespace,
      name: Object.entries(arg.labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
      labels: arg.labels,
      // a pod of another cluster: only the namespace labels given; here: the namespace's own
      namespaceLabels:
        given || inCluster !== clusterName ? arg.namespaceLabels : await namespaceLabels(arg.namespace),
      serviceAccount: arg.serviceAccount,
    };
  };
  const [from, to] = [
    await endpoint("--from", flags.from, flags.fromCluster),
    await endpoint("--to", flags.to, flags.toCluster),
  ];

  const networking = kc.makeApiClient(NetworkingV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const listCilium = async (plural: string, kind: string) => {
    try {
      const list = (await custom.listClusterCustomObject({
        group: CILIUM_GROUP,
        version: CILIUM_VERSION,
        plural,
      })) as {
        items?: unknown[];
      };
      // list items carry no kind: the parser needs it
      return (list.items ?? []).map((item) => ({ ...(item as object), kind }));
    } catch (error) {
      if (isNotFound(error)) return []; // the CRD is not installed: no such policies
      throw error;
    }
  };
  const networkPolicies = (await networking.listNetworkPolicyForAllNamespaces()).items.map((p) => ({
    ...p,
    kind: "NetworkPolicy",
  }));
  const policies = [
    ...networkPolicies,
    ...(await listCilium(PolicyResource.namespaced.plural, PolicyResource.namespaced.kind)),
    ...(await listCilium(PolicyResource.clusterwide.plural, PolicyResource.clusterwide.kind)),
  ];
  const result = tracePolicy({
    clusterName,
    policies,
    from,
    to,
    protocol: flags.dport?.protocol ?? 0,
    port: flags.dport?.port ?? 0,
  });
  if (flags.format === "json")
    printJson({ cluster: clusterName, from, to, dport: flags.dport?.text ?? "any", ...result });
  else
    for (const line of renderTrace({ cluster: clusterName, from, to, dport: flags.dport?.text, result }))
      process.stdout.write(`${line}\n`);
}
