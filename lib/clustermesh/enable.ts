import type { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import {
  CertificateBundle,
  createCa,
  isIssuedBy,
  issueClientCert,
  issueServerCert,
} from "../../certs/authority.js";
import { etcdUsers } from "../../certs/users.js";
import type { EncryptionMode } from "../api/encryption.js";
import {
  apiErrorMessage,
  applyConfigMap,
  applySecret,
  applyService,
  coreApi,
  decodeSecretData,
  encodeSecretData,
  readConfigMap,
  readSecret,
} from "../k8s/client.js";
import { UsageError } from "../usage-error.js";
import { clusterNameProblem } from "./cluster-name.js";
import { disableCommand } from "./hints.js";
import {
  configMapData,
  DEFAULT_APISERVER_NODE_PORT,
  DEFAULT_MAX_CONNECTED_CLUSTERS,
  MESH_DOMAIN,
  type MeshClusterConfig,
  MeshObjects,
  parseConfigMapData,
} from "./resources.js";

export interface EnableOptions {
  context: string;
  /** The kubeconfig file the user named, only for the commands printed in hints. */
  kubeconfig?: string;
  clusterName?: string;
  clusterId?: number;
  maxConnectedClusters?: number;
  encryption?: EncryptionMode;
  /** KVStoreMesh mode (recorded in the ConfigMap for `connect`); default: as enabled before, else off. */
  kvstoremesh?: boolean;
  /** Use this CA (PEM) instead of the cluster's existing one or a new one: clusters of a mesh share a CA. */
  ca?: { certPem: string; keyPem: string };
  nodePort?: number;
  progress: (line: string) => void;
}

export interface EnabledCluster {
  config: MeshClusterConfig;
  ca: CertificateBundle;
  server: CertificateBundle;
  admin: CertificateBundle;
  remote: CertificateBundle;
  local: CertificateBundle;
  nodeIps: string[];
}

function tlsSecret(name: string, bundle: CertificateBundle) {
  return {
    metadata: { name, namespace: "kube-system", labels: { "app.kubernetes.io/part-of": "clustermesh" } },
    type: "kubernetes.io/tls",
    data: encodeSecretData({ "ca.crt": bundle.caPem, "tls.crt": bundle.certPem, "tls.key": bundle.keyPem }),
  };
}

async function existingBundle(core: CoreV1Api, name: string, ca: CertificateBundle, commonName: string) {
  const secret = await readSecret(core, name);
  const cert = decodeSecretData(secret, "tls.crt");
  const key = decodeSecretData(secret, "tls.key");
  if (!cert || !key || !isIssuedBy(cert, ca.certPem)) return undefined;
  const bundle = new CertificateBundle(cert, key, ca.certPem);
  return bundle.commonName === commonName ? bundle : undefined;
}

const MAX_CONNECTED_CLUSTERS_CHOICES = [255, 511];

/**
 * What can be checked of the flags without the cluster: the name's form, the id against the largest
 * range the cluster could have. Run before reaching the cluster, so a typo never waits on the network.
 */
export function checkEnableFlags(
  options: Pick<EnableOptions, "clusterName" | "clusterId" | "maxConnectedClusters">,
): void {
  if (options.clusterName !== undefined) {
    const nameProblem = clusterNameProblem(options.clusterName);
    if (nameProblem) throw new UsageError(`--cluster-name: ${nameProblem}`);
  }
  const max = options.maxConnectedClusters;
  if (max !== undefined && !MAX_CONNECTED_CLUSTERS_CHOICES.includes(max))
    throw new UsageError(`--max-connected-clusters: ${max} is not 255 or 511`);
  const id = options.clusterId;
  const highest = max ?? Math.max(...MAX_CONNECTED_CLUSTERS_CHOICES);
  if (id !== undefined && (!Number.isInteger(id) || id < 1 || id > highest)) {
    throw new UsageError(
      `--cluster-id: ${id} is not an integer 1..${highest}${max === undefined ? " (1..255 unless --max-connected-clusters 511)" : ""}`,
    );
  }
}

function resolveIdentity(options: EnableOptions, existing: MeshClusterConfig | undefined): MeshClusterConfig {
  const clusterName = options.clusterName ?? existing?.clusterName;
  const clusterId = options.clusterId ?? existing?.clusterId;
  const maxConnectedClusters =
    options.maxConnectedClusters ?? existing?.maxConnectedClusters ?? DEFAULT_MAX_CONNECTED_CLUSTERS;
  if (!clusterName) throw new UsageError("--cluster-name is required the first time a cluster is enabled");
  const nameProblem = clusterNameProblem(clusterName);
  if (nameProblem) throw new UsageError(`--cluster-name: ${nameProblem}`);
  if (clusterId === undefined)
    throw new UsageError("--cluster-id is required the first time a cluster is enabled");
  if (![255, 511].includes(maxConnectedClusters))
    throw new UsageError("--max-connected-clusters must be 255 or 511");
  if (!Number.isInteger(clusterId) || clusterId < 1 || clusterId > maxConnectedClusters) {
    throw new UsageError(`--cluster-id must be an integer 1..${maxConnectedClusters}`);
  }
  if (existing) {
    for (const [field, was, now] of [
      ["cluster-name", existing.clusterName, clusterName],
      ["cluster-id", existing.clusterId, clusterId],
      ["max-connected-clusters", existing.maxConnectedClusters, maxConnectedClusters],
    ] as const) {
      if (was !== now) {
        throw new UsageError(
          `--${field}: this cluster is already enabled with ${field} ${was}; it cannot change on a live cluster (disable it first: ${disableCommand(options.context, options.kubeconfig)})`,
        );
      }
    }
  }
  return {
    clusterName,
    clusterId,
    maxConnectedClusters,
    tunnelProtocol: "vxlan",
    encryption: options.encryption ?? existing?.encryption ?? "none",
    kvstoremesh: options.kvstoremesh ?? existing?.kvstoremesh ?? false,
  };
}

/**
 * `meshctl clustermesh enable`: records the cluster's mesh identity, issues (or keeps) the CA and
 * the apiserver's server/admin/remote/local certificates as Secrets, and exposes the
 * clustermesh-apiserver through a NodePort service. Idempotent.
 */
export async function enableClusterMesh(kc: KubeConfig, options: EnableOptions): Promise<EnabledCluster> {
  checkEnableFlags(options);
  const core = coreApi(kc);
  let nodes: Awaited<ReturnType<CoreV1Api["listNode"]>>;
  try {
    nodes = await core.listNode();
  } catch (error) {
    throw new Error(`context ${options.context}: cannot reach the Kubernetes API: ${apiErrorMessage(error)}`);
  }
  const existingMap = await readConfigMap(core, MeshObjects.config);
  const existing = existingMap
    ? parseConfigMapData(existingMap.data, `ConfigMap ${MeshObjects.config}`)
    : undefined;
  const config = resolveIdentity(options, existing);
  const say = options.progress;

  const caSecret = await readSecret(core, MeshObjects.ca);
  let ca: CertificateBundle;
  if (options.ca) {
    ca = new CertificateBundle(options.ca.certPem, options.ca.keyPem, options.ca.certPem);
  } else if (decodeSecretData(caSecret, "ca.crt") && decodeSecretData(caSecret, "ca.key")) {
    const pem = decodeSecretData(caSecret, "ca.crt") as string;
    ca = new CertificateBundle(pem, decodeSecretData(caSecret, "ca.key") as string, pem);
  } else {
    ca = createCa({ commonName: "clustermesh CA" });
    say("Generated a new CA (share it with the other clusters: enable them with --ca-cert/--ca-key)");
  }
  await applySecret(core, {
    metadata: { name: MeshObjects.ca, namespace: "kube-system" },
    data: encodeSecretData({ "ca.crt": ca.certPem, "ca.key": ca.keyPem }),
  });

  const nodeIps = (nodes.items ?? []).flatMap(
    (node) => node.status?.addresses?.filter((a) => a.type === "InternalIP").map((a) => a.address) ?? [],
  );
  const server =
    (await existingBundle(core, MeshObjects.serverCert, ca, "clustermesh-apiserver.cilium.io")) ??
    issueServerCert(ca, { ipAddresses: nodeIps, dnsNames: [`${config.clusterName}.${MESH_DOMAIN}`] });
  const admin =
    (await existingBundle(core, MeshObjects.adminCert, ca, etcdUsers.admin(config.clusterName))) ??
    issueClientCert(ca, { commonName: etcdUsers.admin(config.clusterName) });
  const remote =
    (await existingBundle(core, MeshObjects.remoteCert, ca, etcdUsers.remote())) ??
    issueClientCert(ca, { commonName: etcdUsers.remote() });
  const local =
    (await existingBundle(core, MeshObjects.localCert, ca, etcdUsers.local(config.clusterName))) ??
    issueClientCert(ca, { commonName: etcdUsers.local(config.clusterName) });
  for (const [name, bundle] of [
    [MeshObjects.serverCert, server],
    [MeshObjects.adminCert, admin],
    [MeshObjects.remoteCert, remote],
    [MeshObjects.localCert, local],
  ] as const) {
    await applySecret(core, tlsSecret(name, bundle));
  }
  say(
    `Certificates in kube-system: ${MeshObjects.serverCert}, -admin-cert (${admin.commonName}), -remote-cert, -local-cert`,
  );

  await applyConfigMap(core, {
    metadata: { name: MeshObjects.config, namespace: "kube-system" },
    data: configMapData(config),
  });
  const service = await applyService(core, {
    metadata: {
      name: MeshObjects.service,
      namespace: "kube-system",
      labels: { "app.kubernetes.io/part-of": "clustermesh" },
    },
    spec: {
      type: "NodePort",
      ports: [
        {
          name: "etcd",
          port: 2379,
          targetPort: 2379 as never,
          nodePort: options.nodePort ?? DEFAULT_APISERVER_NODE_PORT,
          protocol: "TCP",
        },
      ],
    },
  });
  say(
    `Cluster ${config.clusterName} (id ${config.clusterId}) enabled; Service ${MeshObjects.service} of type NodePort on port ${service.spec?.ports?.[0]?.nodePort}`,
  );
  return { config, ca, server, admin, remote, local, nodeIps };
}
