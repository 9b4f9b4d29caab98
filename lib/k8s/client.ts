import {
  ApiException,
  CoreV1Api,
  KubeConfig,
  type V1ConfigMap,
  type V1Secret,
  type V1Service,
} from "@kubernetes/client-node";
import { MESH_NAMESPACE } from "../api/rbac.js";

/** A KubeConfig for a context of $KUBECONFIG (or the given file), failing with the context's name. */
export function kubeConfigFor(context?: string, file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (context) {
    if (!kc.getContextObject(context)) {
      const known = kc.getContexts().map((c) => c.name);
      throw new Error(
        `--context: no context "${context}" in the kubeconfig (known: ${known.join(", ") || "none"})`,
      );
    }
    kc.setCurrentContext(context);
  }
  return kc;
}

/** HTTP status of a failed API call (client-node's ApiException carries it as `code`), or undefined. */
export function apiStatus(error: unknown): number | undefined {
  const code = (error as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}

export function isNotFound(error: unknown): boolean {
  return error instanceof ApiException && error.code === 404;
}

export function isConflict(error: unknown): boolean {
  return error instanceof ApiException && error.code === 409;
}

/** The API error's message (Kubernetes Status.message) rather than the client's generic text. */
export function apiErrorMessage(error: unknown): string {
  if (error instanceof ApiException) {
    try {
      const body = typeof error.body === "string" ? JSON.parse(error.body) : error.body;
      if (body?.message) return `${body.message} (HTTP ${error.code})`;
    } catch {
      // the body is not JSON (e.g. a proxy's HTML page): the HTTP code below is all there is to say
    }
    return `HTTP ${error.code}`;
  }
  return error instanceof Error ? error.message : String(error);
}

export async function readSecret(
  core: CoreV1Api,
  name: string,
  namespace = MESH_NAMESPACE,
): Promise<V1Secret | undefined> {
  try {
    return await core.readNamespacedSecret({ name, namespace });
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export async function readConfigMap(
  core: CoreV1Api,
  name: string,
  namespace = MESH_NAMESPACE,
): Promise<V1ConfigMap | undefined> {
  try {
    return await core.readNamespacedConfigMap({ name, namespace });
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Create, or replace keeping the server's resourceVersion (last writer wins, as `kubectl apply --force`). */
export async function applySecret(core: CoreV1Api, secret: V1Secret): Promise<void> {
  const namespace = secret.metadata?.namespace ?? MESH_NAMESPACE;
  const name = secret.metadata?.name ?? "";
  const existing = await readSecret(core, name, namespace);
  if (!existing) {
    await core.createNamespacedSecret({ namespace, body: secret });
    return;
  }
  const body = {
    ...secret,
    metadata: { ...secret.metadata, resourceVersion: existing.metadata?.resourceVersion },
  };
  await core.replaceNamespacedSecret({ name, namespace, body });
}

export async function applyConfigMap(core: CoreV1Api, configMap: V1ConfigMap): Promise<void> {
  const namespace = configMap.metadata?.namespace ?? MESH_NAMESPACE;
  const name = configMap.metadata?.name ?? "";
  const existing = await readConfigMap(core, name, namespace);
  if (!existing) {
    await core.createNamespacedConfigMap({ namespace, body: configMap });
    return;
  }
  const body = {
    ...configMap,
    metadata: { ...configMap.metadata, resourceVersion: existing.metadata?.resourceVersion },
  };
  await core.replaceNamespacedConfigMap({ name, namespace, body });
}

export async function applyService(core: CoreV1Api, service: V1Service): Promise<V1Service> {
  const namespace = service.metadata?.namespace ?? MESH_NAMESPACE;
  const name = service.metadata?.name ?? "";
  try {
    const existing = await core.readNamespacedService({ name, namespace });
    const body = {
      ...existing,
      metadata: {
        ...existing.metadata,
        labels: service.metadata?.labels,
        annotations: service.metadata?.annotations,
      },
      spec: {
        ...existing.spec,
        ...service.spec,
        clusterIP: existing.spec?.clusterIP,
        clusterIPs: existing.spec?.clusterIPs,
      },
    };
    return await core.replaceNamespacedService({ name, namespace, body });
  } catch (error) {
    if (!isNotFound(error)) throw error;
    return await core.createNamespacedService({ namespace, body: service });
  }
}

export function coreApi(kc: KubeConfig): CoreV1Api {
  return kc.makeApiClient(CoreV1Api);
}

export function decodeSecretData(secret: V1Secret | undefined, key: string): string | undefined {
  const value = secret?.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
}

export function encodeSecretData(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString("base64")]));
}
