/**
 * The certificates and keys of one cluster's real Kubernetes control plane, laid out as kubeadm
 * lays out /etc/kubernetes/pki (https://kubernetes.io/docs/setup/best-practices/certificates/),
 * minus the front-proxy pair (the lab runs no aggregated API servers).
 */
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { CertificateBundle, createCa, issueLeafCert, type LeafCertOptions } from "../../certs/authority.js";
import { type BundlePaths, bundlePaths, saveBundle } from "../../certs/store.js";
import { nthAddress, parseCidr } from "../../lib/cidr.js";

export interface KubernetesPkiOptions {
  clusterName: string;
  /** Addresses clients use to reach the API server (the control-plane node's IP). */
  apiServerIps: string[];
  /** The first service CIDR: its first address (the `kubernetes` Service) goes into the serving cert. */
  serviceSubnet: string;
  /** Nodes that get a kubelet certificate (client and serving, CN system:node:<name>). */
  nodes: { name: string; ip: string }[];
}

export interface KubernetesPki {
  dir: string;
  /** ca.crt/ca.key: signs every Kubernetes certificate; the API server's --client-ca-file. */
  ca: { cert: string; key: string };
  /** etcd/ca.crt/.key: a separate CA for etcd, as kubeadm has. */
  etcdCa: { cert: string; key: string };
  /** etcd/server: etcd's serving certificate (127.0.0.1, localhost, the node IP). */
  etcdServer: BundlePaths;
  /** etcd/healthcheck-client: CN kube-etcd-healthcheck-client, for probing etcd. */
  etcdHealthcheckClient: BundlePaths;
  /** etcd/apiserver-etcd-client: the API server's etcd client certificate (etcd CA; kept beside
   * that CA because saveBundle writes the issuing CA as ca.crt next to a certificate). */
  apiServerEtcdClient: BundlePaths;
  /** apiserver: serving certificate, SANs as kubeadm sets them. */
  apiServer: BundlePaths;
  /** apiserver-kubelet-client: CN kube-apiserver-kubelet-client, O system:masters (exec/logs/port-forward). */
  apiServerKubeletClient: BundlePaths;
  /** admin: CN kubernetes-admin, O system:masters. */
  admin: BundlePaths;
  /** controller-manager: CN system:kube-controller-manager. */
  controllerManager: BundlePaths;
  /** scheduler: CN system:kube-scheduler. */
  scheduler: BundlePaths;
  /** sa.key (PKCS#1 RSA private key) and sa.pub (SPKI public key): service-account token signing. */
  serviceAccount: { key: string; pub: string };
  /** kubelet-<node>: CN system:node:<node>, O system:nodes, client + server, SANs node name and IP. */
  kubelets: Record<string, BundlePaths>;
}

/** The `kubernetes` Service's ClusterIP: the first address of the first service CIDR. */
export function apiServerServiceIp(serviceSubnet: string): string {
  return nthAddress(parseCidr(serviceSubnet), 1);
}

/**
 * Writes the PKI into `dir` (0700, keys 0600). The CAs and the service-account key are reused
 * when `dir` already has them, so kubeconfigs and tokens stay valid across a restart.
 */
export function createKubernetesPki(dir: string, options: KubernetesPkiOptions): KubernetesPki {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const etcdDir = join(dir, "etcd");
  const ca = loadOrCreateCa(dir, "kubernetes");
  const etcdCa = loadOrCreateCa(etcdDir, "etcd-ca");
  const leaf = (where: string, authority: CertificateBundle, name: string, cert: LeafCertOptions) => {
    saveBundle(where, name, issueLeafCert(authority, cert));
    return bundlePaths(where, name);
  };
  const client = (name: string, commonName: string, organizations: string[] = []) =>
    leaf(dir, ca, name, { commonName, organizations, clientAuth: true });

  const kubelets: Record<string, BundlePaths> = {};
  for (const node of options.nodes) {
    kubelets[node.name] = leaf(dir, ca, `kubelet-${node.name}`, {
      commonName: `system:node:${node.name}`,
      organizations: ["system:nodes"],
      serverAuth: true,
      clientAuth: true,
      dnsNames: [node.name],
      ipAddresses: [node.ip],
    });
  }
  return {
    dir,
    ca: { cert: join(dir, "ca.crt"), key: join(dir, "ca.key") },
    etcdCa: { cert: join(etcdDir, "ca.crt"), key: join(etcdDir, "ca.key") },
    etcdServer: leaf(etcdDir, etcdCa, "server", {
      commonName: `${options.clusterName}-control-plane`,
      serverAuth: true,
      clientAuth: true,
      dnsNames: ["localhost", `${options.clusterName}-control-plane`],
      ipAddresses: ["127.0.0.1", "::1", ...options.apiServerIps],
    }),
    etcdHealthcheckClient: leaf(etcdDir, etcdCa, "healthcheck-client", {
      commonName: "kube-etcd-healthcheck-client",
      clientAuth: true,
    }),
    apiServerEtcdClient: leaf(etcdDir, etcdCa, "apiserver-etcd-client", {
      commonName: "kube-apiserver-etcd-client",
      clientAuth: true,
    }),
    apiServer: leaf(dir, ca, "apiserver", {
      commonName: "kube-apiserver",
      serverAuth: true,
      dnsNames: [
        `${options.clusterName}-control-plane`,
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
      ],
      ipAddresses: [...options.apiServerIps, apiServerServiceIp(options.serviceSubnet), "127.0.0.1"],
    }),
    apiServerKubeletClient: client("apiserver-kubelet-client", "kube-apiserver-kubelet-client", [
      "system:masters",
    ]),
    admin: client("admin", "kubernetes-admin", ["system:masters"]),
    controllerManager: client("controller-manager", "system:kube-controller-manager"),
    scheduler: client("scheduler", "system:kube-scheduler"),
    serviceAccount: loadOrCreateServiceAccountKey(dir),
    kubelets,
  };
}

/**
 * A client certificate of this cluster's CA for one more user (e.g. CoreDNS authenticating as its
 * ServiceAccount's user name, which RBAC matches like a token of that ServiceAccount).
 */
export function issueKubernetesClient(
  pki: KubernetesPki,
  name: string,
  commonName: string,
  organizations: string[] = [],
): BundlePaths {
  const caPem = readFileSync(pki.ca.cert, "utf8");
  const ca = new CertificateBundle(caPem, readFileSync(pki.ca.key, "utf8"), caPem);
  saveBundle(pki.dir, name, issueLeafCert(ca, { commonName, organizations, clientAuth: true }));
  return bundlePaths(pki.dir, name);
}

function loadOrCreateCa(dir: string, commonName: string): CertificateBundle {
  const certPath = join(dir, "ca.crt");
  const keyPath = join(dir, "ca.key");
  if (existsSync(certPath) && existsSync(keyPath)) {
    const certPem = readFileSync(certPath, "utf8");
    return new CertificateBundle(certPem, readFileSync(keyPath, "utf8"), certPem);
  }
  const ca = createCa({ commonName });
  saveBundle(dir, "ca", ca);
  return ca;
}

function loadOrCreateServiceAccountKey(dir: string): { key: string; pub: string } {
  const paths = { key: join(dir, "sa.key"), pub: join(dir, "sa.pub") };
  if (existsSync(paths.key) && existsSync(paths.pub)) return paths;
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  writeFileSync(paths.key, privateKey, { mode: 0o600 });
  writeFileSync(paths.pub, publicKey, { mode: 0o644 });
  return paths;
}
