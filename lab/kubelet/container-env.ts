import type { V1Container, V1Pod } from "@kubernetes/client-node";

/**
 * A container's environment as the kubelet builds it — pure, from the pod, the node's facts and
 * the ConfigMaps and Secrets the container references (fetched beforehand): the service-link-free
 * defaults, then envFrom, then env in order, `$(VAR)` expanded against what came before
 * (https://kubernetes.io/docs/tasks/inject-data-application/define-interdependent-environment-variables/).
 */

export interface EnvFacts {
  nodeName: string;
  nodeIps: string[];
  podIps: string[];
  clusterName: string;
  /** The image's own environment (its PATH); the host's PATH for host-binary images. */
  imageEnv: Record<string, string>;
  /** The `kubernetes` Service: every container gets KUBERNETES_SERVICE_HOST/PORT (in-cluster config). */
  kubernetesService?: { host: string; port: number };
}

/** The variables the kubelet always sets for the API server's Service, as for any Service link. */
function kubernetesServiceEnv(service: { host: string; port: number }): Record<string, string> {
  const url = `tcp://${service.host}:${service.port}`;
  const prefix = `KUBERNETES_PORT_${service.port}_TCP`;
  return {
    KUBERNETES_SERVICE_HOST: service.host,
    KUBERNETES_SERVICE_PORT: String(service.port),
    KUBERNETES_SERVICE_PORT_HTTPS: String(service.port),
    KUBERNETES_PORT: url,
    [prefix]: url,
    [`${prefix}_PROTO`]: "tcp",
    [`${prefix}_PORT`]: String(service.port),
    [`${prefix}_ADDR`]: service.host,
  };
}

export interface ReferencedObjects {
  configMaps: Map<string, Record<string, Buffer> | undefined>;
  secrets: Map<string, Record<string, Buffer> | undefined>;
}

/** Thrown when a reference cannot be resolved: the container waits in CreateContainerConfigError. */
export class ContainerConfigError extends Error {}

/**
 * `$(VAR)` references replaced from env, `$$` kept as a literal `$`; unknown names stay as written
 * (https://kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/).
 */
export function expandVariables(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name?: string) =>
    name === undefined ? "$" : (env[name] ?? whole),
  );
}

/** The value of a downward-API fieldPath for the pod (labels/annotations as the kubelet formats them). */
export function downwardField(pod: V1Pod, fieldPath: string, facts?: Partial<EnvFacts>): string {
  const selected = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (selected) {
    const map = selected[1] === "labels" ? pod.metadata?.labels : pod.metadata?.annotations;
    return map?.[selected[2]] ?? "";
  }
  const all = (map: Record<string, string> | undefined) =>
    Object.keys(map ?? {})
      .sort()
      .map((key) => `${key}=${JSON.stringify(map?.[key])}`)
      .join("\n");
  const fields: Record<string, () => string> = {
    "metadata.name": () => pod.metadata?.name ?? "",
    "metadata.namespace": () => pod.metadata?.namespace ?? "default",
    "metadata.uid": () => pod.metadata?.uid ?? "",
    "metadata.labels": () => all(pod.metadata?.labels),
    "metadata.annotations": () => all(pod.metadata?.annotations),
    "spec.nodeName": () => facts?.nodeName ?? pod.spec?.nodeName ?? "",
    "spec.serviceAccountName": () => pod.spec?.serviceAccountName ?? "default",
    "status.podIP": () => facts?.podIps?.[0] ?? "",
    "status.podIPs": () => (facts?.podIps ?? []).join(","),
    "status.hostIP": () => facts?.nodeIps?.[0] ?? "",
    "status.hostIPs": () => (facts?.nodeIps ?? []).join(","),
  };
  return fields[fieldPath]?.() ?? "";
}

/** The ConfigMaps and Secrets the container's env and envFrom name. */
export function referencedNames(container: V1Container): { configMaps: Set<string>; secrets: Set<string> } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef?.name) configMaps.add(source.configMapRef.name);
    if (source.secretRef?.name) secrets.add(source.secretRef.name);
  }
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    if (from?.configMapKeyRef?.name) configMaps.add(from.configMapKeyRef.name);
    if (from?.secretKeyRef?.name) secrets.add(from.secretKeyRef.name);
  }
  return { configMaps, secrets };
}

export function containerEnv(
  pod: V1Pod,
  container: V1Container,
  facts: EnvFacts,
  objects: ReferencedObjects,
): Record<string, string> {
  const namespace = pod.metadata?.namespace ?? "default";
  const env: Record<string, string> = {
    PATH: facts.imageEnv.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ...facts.imageEnv,
    ...(facts.kubernetesService ? kubernetesServiceEnv(facts.kubernetesService) : {}),
    HOME: "/root",
    HOSTNAME: pod.spec?.hostNetwork ? facts.nodeName : (pod.metadata?.name ?? ""),
    POD_NAME: pod.metadata?.name ?? "",
    POD_NAMESPACE: namespace,
    POD_UID: pod.metadata?.uid ?? "",
    POD_IP: facts.podIps[0] ?? "",
    POD_IPS: facts.podIps.join(","),
    NODE_NAME: facts.nodeName,
    HOST_IP: facts.nodeIps[0] ?? "",
    CLUSTER_NAME: facts.clusterName,
  };
  const keyOf = (
    kind: "ConfigMap" | "Secret",
    ref: { name?: string; key: string; optional?: boolean },
  ): string | undefined => {
    const data = (kind === "ConfigMap" ? objects.configMaps : objects.secrets).get(ref.name ?? "");
    if (!data) {
      if (ref.optional) return undefined;
      throw new ContainerConfigError(`${kind.toLowerCase()} "${ref.name}" not found`);
    }
    const value = data[ref.key];
    if (value === undefined) {
      if (ref.optional) return undefined;
      throw new ContainerConfigError(`couldn't find key ${ref.key} in ${kind} ${namespace}/${ref.name}`);
    }
    return value.toString("utf8");
  };
  for (const source of container.envFrom ?? []) {
    const ref = source.configMapRef ?? source.secretRef;
    if (!ref) continue;
    const kind = source.configMapRef ? "ConfigMap" : "Secret";
    const data = (kind === "ConfigMap" ? objects.configMaps : objects.secrets).get(ref.name ?? "");
    if (!data) {
      if (ref.optional) continue;
      throw new ContainerConfigError(`${kind.toLowerCase()} "${ref.name}" not found`);
    }
    for (const [key, value] of Object.entries(data))
      env[`${source.prefix ?? ""}${key}`] = value.toString("utf8");
  }
  const expand = (value: string) => expandVariables(value, env);
  for (const variable of container.env ?? []) {
    const from = variable.valueFrom;
    let value: string | undefined;
    if (variable.value !== undefined) value = expand(variable.value);
    else if (from?.fieldRef) value = downwardField(pod, from.fieldRef.fieldPath, facts);
    else if (from?.configMapKeyRef) value = keyOf("ConfigMap", from.configMapKeyRef);
    else if (from?.secretKeyRef) value = keyOf("Secret", from.secretKeyRef);
    else value = "";
    if (value !== undefined) env[variable.name] = value;
  }
  return env;
}
