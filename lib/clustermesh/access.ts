import { X509Certificate } from "node:crypto";
import type { CoreV1Api } from "@kubernetes/client-node";
import type { EncryptionMode } from "../api/encryption.js";
import { decodeSecretData, readConfigMap, readSecret } from "../k8s/client.js";
import { UsageError } from "../usage-error.js";
import { clusterNameProblem } from "./cluster-name.js";
import { enableCommand } from "./hints.js";
import { MeshObjects, parseConfigMapData } from "./resources.js";

/** What one cluster offers to others: who it is and how to reach its clustermesh-apiserver. */
export interface ClusterAccess {
  context: string;
  clusterName: string;
  clusterId: number;
  maxConnectedClusters: number;
  encryption: EncryptionMode;
  endpoints: string[];
  caPem: string;
  serviceType: string;
  /** KVStoreMesh mode: its apiserver caches the remotes, its agents read the local etcd. */
  kvstoremesh: boolean;
}

export class NotEnabledError extends UsageError {}

/** Reads a cluster's access information from its Kubernetes API (cilium-cli's extractAccessInformation). */
export async function readClusterAccess(
  core: CoreV1Api,
  context: string,
  /** The kubeconfig file the user named, only for the command printed in the hint. */
  kubeconfig?: string,
): Promise<ClusterAccess> {
  const configMap = await readConfigMap(core, MeshObjects.config);
  if (!configMap) {
    throw new NotEnabledError(
      `context ${context}: ConfigMap kube-system/${MeshObjects.config} not found; run: ${enableCommand(context, kubeconfig)} (outside a lab, the first time also --cluster-name and --cluster-id)`,
    );
  }
  const config = parseConfigMapData(
    configMap.data,
    `context ${context}: ConfigMap kube-system/${MeshObjects.config}`,
  );
  const caPem = decodeSecretData(await readSecret(core, MeshObjects.ca), "ca.crt");
  if (!caPem)
    throw new NotEnabledError(`context ${context}: Secret kube-system/${MeshObjects.ca} has no ca.crt`);
  const remoteCert = await readSecret(core, MeshObjects.remoteCert);
  if (!remoteCert)
    throw new NotEnabledError(`context ${context}: Secret kube-system/${MeshObjects.remoteCert} not found`);

  let service: Awaited<ReturnType<CoreV1Api["readNamespacedService"]>>;
  try {
    service = await core.readNamespacedService({ name: MeshObjects.service, namespace: "kube-system" });
  } catch {
    throw new NotEnabledError(`context ${context}: Service kube-system/${MeshObjects.service} not found`);
  }
  const port = service.spec?.ports?.[0];
  let endpoints: string[];
  if (service.spec?.type === "NodePort" && port?.nodePort) {
    // As cilium-cli: the first node's ExternalIP, else its InternalIP.
    const nodes = (await core.listNode()).items;
    const addresses = nodes[0]?.status?.addresses ?? [];
    const ip =
      addresses.find((a) => a.type === "ExternalIP")?.address ??
      addresses.find((a) => a.type === "InternalIP")?.address;
    if (!ip)
      throw new Error(`context ${context}: no node address for the NodePort service ${MeshObjects.service}`);
    endpoints = [`https://${ip}:${port.nodePort}`];
  } else if (service.spec?.type === "LoadBalancer") {
    const ingress = service.status?.loadBalancer?.ingress ?? [];
    endpoints = ingress.flatMap((i) => (i.ip ? [`https://${i.ip}:${port?.port ?? 2379}`] : []));
  } else {
    endpoints = service.spec?.clusterIP ? [`https://${service.spec.clusterIP}:${port?.port ?? 2379}`] : [];
  }
  if (endpoints.length === 0)
    throw new Error(`context ${context}: the clustermesh-apiserver service has no address yet`);
  return {
    context,
    clusterName: config.clusterName,
    clusterId: config.clusterId,
    maxConnectedClusters: config.maxConnectedClusters,
    encryption: config.encryption,
    endpoints,
    caPem,
    serviceType: service.spec?.type ?? "ClusterIP",
    kvstoremesh: config.kvstoremesh,
  };
}

function caKeyId(pem: string): string {
  const cert = new X509Certificate(pem);
  return cert.fingerprint256;
}

export function sameCa(a: string, b: string): boolean {
  return caKeyId(a) === caKeyId(b);
}

/** Every reason the given clusters cannot be connected (cilium-cli's validateInfoForConnect, plus encryption). Pure. */
export function connectProblems(clusters: ClusterAccess[], allowMismatchingCa: boolean): string[] {
  const problems: string[] = [];
  const byName = new Map<string, ClusterAccess>();
  const byId = new Map<number, ClusterAccess>();
  for (const cluster of clusters) {
    const nameProblem = clusterNameProblem(cluster.clusterName);
    if (nameProblem) problems.push(`context ${cluster.context}: cluster name ${nameProblem}`);
    if (cluster.clusterName === "default") {
      problems.push(
        `context ${cluster.context}: cluster name "default" cannot join a mesh; re-enable with --cluster-name`,
      );
    }
    if (cluster.clusterId < 1 || cluster.clusterId > cluster.maxConnectedClusters) {
      problems.push(
        `context ${cluster.context}: cluster id ${cluster.clusterId} is outside 1..${cluster.maxConnectedClusters}`,
      );
    }
    const sameName = byName.get(cluster.clusterName);
    if (sameName) {
      problems.push(
        `contexts ${sameName.context} and ${cluster.context} are both named "${cluster.clusterName}"; cluster names must be unique in a mesh`,
      );
    }
    const sameId = byId.get(cluster.clusterId);
    if (sameId && sameId.clusterName !== cluster.clusterName) {
      problems.push(
        `clusters ${sameId.clusterName} (${sameId.context}) and ${cluster.clusterName} (${cluster.context}) both have cluster id ${cluster.clusterId}; ids must be unique in a mesh`,
      );
    }
    byName.set(cluster.clusterName, cluster);
    byId.set(cluster.clusterId, cluster);
  }
  const [first, ...rest] = clusters;
  for (const other of rest) {
    if (other.maxConnectedClusters !== first.maxConnectedClusters) {
      problems.push(
        `max-connected-clusters differs: ${first.clusterName} has ${first.maxConnectedClusters}, ${other.clusterName} has ${other.maxConnectedClusters}`,
      );
    }
    if (other.encryption !== first.encryption) {
      problems.push(
        `encryption differs: ${first.clusterName} uses ${first.encryption}, ${other.clusterName} uses ${other.encryption}; every cluster of a mesh must use the same mode`,
      );
    }
    if (!allowMismatchingCa && !sameCa(first.caPem, other.caPem)) {
      problems.push(
        `${first.clusterName} and ${other.clusterName} have different CAs; enable both with the same CA (meshctl clustermesh enable --ca-cert/--ca-key) or pass --allow-mismatching-ca`,
      );
    }
  }
  return problems;
}
