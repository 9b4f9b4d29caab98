/** The certificates of one lab cluster's control plane, written the way kubeadm lays them out. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CertificateBundle, createCa, issueLeafCert } from "../../certs/authority.js";
import { type BundlePaths, bundlePaths, saveBundle } from "../../certs/store.js";
import { ServiceIpRange } from "./ipalloc.js";

export interface ClusterKubePkiOptions {
  clusterName: string;
  /** Addresses clients use to reach the API server (the control-plane node's IP, …). */
  apiServerIps: string[];
  /** The service CIDR: its first address (the `kubernetes` Service) goes into the serving cert. */
  serviceSubnet: string;
  nodes: { name: string; ip: string }[];
}

export interface ClusterKubePki {
  dir: string;
  /** ca.crt + ca.key */
  ca: { cert: string; key: string };
  /** apiserver.crt/.key: serving certificate. */
  apiServer: BundlePaths;
  /** admin.crt/.key: CN kubernetes-admin, O system:masters (the user's kubeconfig). */
  admin: BundlePaths;
  /** controller-manager.crt/.key: CN system:kube-controller-manager. */
  controllerManager: BundlePaths;
  /** scheduler.crt/.key: CN system:kube-scheduler. */
  scheduler: BundlePaths;
  /** apiserver-kubelet-client.crt/.key: CN kube-apiserver-kubelet-client, O system:masters. */
  apiServerKubeletClient: BundlePaths;
  /** meshctl.crt/.key: CN meshctl, O system:masters. */
  meshctl: BundlePaths;
  /** agent.crt/.key: CN clustermesh-agent, O clustermesh:agents (the per-node agents). */
  agent: BundlePaths;
  /** clustermesh-apiserver.crt/.key: CN clustermesh-apiserver, O clustermesh:apiservers. */
  clustermeshApiserver: BundlePaths;
  /** kubelet-<node>.crt/.key per node: CN system:node:<node>, O system:nodes, client + server, SAN node IP. */
  kubelets: Record<string, BundlePaths>;
}

/**
 * Writes a cluster's Kubernetes PKI into `dir` (mode 0700; keys 0600) and returns the file paths:
 *
 * | file | CN | O | usage |
 * |---|---|---|---|
 * | ca.crt, ca.key | `<cluster>-kubernetes-ca` | | CA (reused if `dir` already has one, so kubeconfigs stay valid) |
 * | apiserver.crt/.key | kube-apiserver | | server; SANs: apiServerIps, first service IP, 127.0.0.1, kubernetes, kubernetes.default, kubernetes.default.svc, kubernetes.default.svc.cluster.local |
 * | admin.crt/.key | kubernetes-admin | system:masters | client |
 * | controller-manager.crt/.key | system:kube-controller-manager | | client |
 * | scheduler.crt/.key | system:kube-scheduler | | client |
 * | apiserver-kubelet-client.crt/.key | kube-apiserver-kubelet-client | system:masters | client (API server → kubelets) |
 * | meshctl.crt/.key | meshctl | system:masters | client |
 * | agent.crt/.key | clustermesh-agent | clustermesh:agents | client |
 * | clustermesh-apiserver.crt/.key | clustermesh-apiserver | clustermesh:apiservers | client |
 * | kubelet-`<node>`.crt/.key | system:node:`<node>` | system:nodes | client + server; SANs: node IP, node name |
 */
export function createClusterKubePki(dir: string, options: ClusterKubePkiOptions): ClusterKubePki {
  const ca = loadOrCreateCa(dir, options.clusterName);
  const serviceIp = new ServiceIpRange(options.serviceSubnet).apiServerServiceIp;
  const client = (name: string, commonName: string, organizations: string[] = []) => {
    saveBundle(dir, name, issueLeafCert(ca, { commonName, organizations, clientAuth: true }));
    return bundlePaths(dir, name);
  };
  saveBundle(
    dir,
    "apiserver",
    issueLeafCert(ca, {
      commonName: "kube-apiserver",
      serverAuth: true,
      dnsNames: [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
        `${options.clusterName}-control-plane`,
      ],
      ipAddresses: [...options.apiServerIps, serviceIp, "127.0.0.1"],
    }),
  );
  const kubelets: Record<string, BundlePaths> = {};
  for (const node of options.nodes) {
    const name = `kubelet-${node.name}`;
    saveBundle(
      dir,
      name,
      issueLeafCert(ca, {
        commonName: `system:node:${node.name}`,
        organizations: ["system:nodes"],
        serverAuth: true,
        clientAuth: true,
        dnsNames: [node.name],
        ipAddresses: [node.ip],
      }),
    );
    kubelets[node.name] = bundlePaths(dir, name);
  }
  return {
    dir,
    ca: { cert: join(dir, "ca.crt"), key: join(dir, "ca.key") },
    apiServer: bundlePaths(dir, "apiserver"),
    admin: client("admin", "kubernetes-admin", ["system:masters"]),
    controllerManager: client("controller-manager", "system:kube-controller-manager"),
    scheduler: client("scheduler", "system:kube-scheduler"),
    apiServerKubeletClient: client("apiserver-kubelet-client", "kube-apiserver-kubelet-client", [
      "system:masters",
    ]),
    meshctl: client("meshctl", "meshctl", ["system:masters"]),
    agent: client("agent", "clustermesh-agent", ["clustermesh:agents"]),
    clustermeshApiserver: client("clustermesh-apiserver", "clustermesh-apiserver", [
      "clustermesh:apiservers",
    ]),
    kubelets,
  };
}

function loadOrCreateCa(dir: string, clusterName: string): CertificateBundle {
  const certPath = join(dir, "ca.crt");
  const keyPath = join(dir, "ca.key");
  if (existsSync(certPath) && existsSync(keyPath)) {
    const certPem = readFileSync(certPath, "utf8");
    return new CertificateBundle(certPem, readFileSync(keyPath, "utf8"), certPem);
  }
  const ca = createCa({ commonName: `${clusterName}-kubernetes-ca` });
  saveBundle(dir, "ca", ca);
  return ca;
}
