/**
 * Command lines of one cluster's control plane, as kubeadm writes them into its static pod
 * manifests for kind (kubeadm cmd/kubeadm/app/phases/controlplane/manifests.go and
 * phases/etcd/local.go; kind adds its podSubnet/serviceSubnet via kubeadm's networking section).
 * Pure: paths in, argv out. Deviations from kubeadm are commented where they are made.
 */
import type { KubernetesPki } from "./pki.js";

export const API_SERVER_PORT = 6443;
export const ETCD_CLIENT_PORT = 2379;
export const ETCD_PEER_PORT = 2380;
/** Kubernetes' own default, which kind keeps. */
export const DEFAULT_NODE_PORT_RANGE = "30000-32767";
/** kubeadm's default service-account issuer for clusterName "kubernetes" and dnsDomain cluster.local. */
export const SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local";

export interface ControlPlaneLayout {
  clusterName: string;
  /** The control-plane node: its name (etcd member name) and the address the API server advertises. */
  nodeName: string;
  nodeIp: string;
  podSubnets: string[];
  serviceSubnets: string[];
  nodePortRange: string;
  etcdDataDir: string;
  pki: KubernetesPki;
  kubeconfigs: { controllerManager: string; scheduler: string };
  binaries: { etcd: string; kubeApiserver: string; kubeControllerManager: string; kubeScheduler: string };
}

function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** etcd as kubeadm's local etcd (loopback and the node IP), a fresh bootstrap token per start, lab-speed settings. */
export function etcdArgv(layout: ControlPlaneLayout, clusterToken: string): string[] {
  const { pki } = layout;
  const loopbackUrl = `https://${hostPort("127.0.0.1", ETCD_CLIENT_PORT)}`;
  const nodeUrl = `https://${hostPort(layout.nodeIp, ETCD_CLIENT_PORT)}`;
  const peerUrl = `https://${hostPort("127.0.0.1", ETCD_PEER_PORT)}`;
  return [
    layout.binaries.etcd,
    `--name=${layout.nodeName}`,
    `--data-dir=${layout.etcdDataDir}`,
    `--listen-client-urls=${loopbackUrl},${nodeUrl}`,
    `--advertise-client-urls=${nodeUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=${layout.nodeName}=${peerUrl}`,
    "--initial-cluster-state=new",
    `--initial-cluster-token=${clusterToken}`,
    "--listen-metrics-urls=http://127.0.0.1:2381",
    `--cert-file=${layout.pki.etcdServer.cert}`,
    `--key-file=${layout.pki.etcdServer.key}`,
    `--trusted-ca-file=${pki.etcdCa.cert}`,
    "--client-cert-auth=true",
    `--peer-cert-file=${layout.pki.etcdServer.cert}`,
    `--peer-key-file=${layout.pki.etcdServer.key}`,
    `--peer-trusted-ca-file=${pki.etcdCa.cert}`,
    "--peer-client-cert-auth=true",
    "--snapshot-count=10000",
    "--experimental-initial-corrupt-check=true",
    // kube-apiserver's watch cache relies on progress notifications (consistent reads from cache).
    "--experimental-watch-progress-notify-interval=5s",
    // Lab only: a throwaway single member; fsync on a disk shared by several builds would make
    // every write wait for the disk (etcd 3.5 has this flag; Debian's 3.4 has not).
    "--unsafe-no-fsync",
    "--heartbeat-interval=100",
    "--election-timeout=1000",
    "--logger=zap",
    "--log-level=warn",
  ];
}

export function apiServerArgv(layout: ControlPlaneLayout): string[] {
  const { pki } = layout;
  return [
    layout.binaries.kubeApiserver,
    `--advertise-address=${layout.nodeIp}`,
    `--secure-port=${API_SERVER_PORT}`,
    "--allow-privileged=true",
    "--authorization-mode=Node,RBAC",
    "--enable-admission-plugins=NodeRestriction",
    "--enable-bootstrap-token-auth=true",
    `--client-ca-file=${pki.ca.cert}`,
    `--tls-cert-file=${pki.apiServer.cert}`,
    `--tls-private-key-file=${pki.apiServer.key}`,
    `--etcd-servers=https://${hostPort("127.0.0.1", ETCD_CLIENT_PORT)}`,
    `--etcd-cafile=${pki.etcdCa.cert}`,
    `--etcd-certfile=${pki.apiServerEtcdClient.cert}`,
    `--etcd-keyfile=${pki.apiServerEtcdClient.key}`,
    `--kubelet-client-certificate=${pki.apiServerKubeletClient.cert}`,
    `--kubelet-client-key=${pki.apiServerKubeletClient.key}`,
    "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
    `--service-account-issuer=${SERVICE_ACCOUNT_ISSUER}`,
    `--service-account-key-file=${pki.serviceAccount.pub}`,
    `--service-account-signing-key-file=${pki.serviceAccount.key}`,
    `--service-cluster-ip-range=${layout.serviceSubnets.join(",")}`,
    `--service-node-port-range=${layout.nodePortRange}`,
    // No front-proxy/requestheader flags: the lab runs no aggregated API servers.
    "--profiling=false",
  ];
}

export function controllerManagerArgv(layout: ControlPlaneLayout): string[] {
  const { pki } = layout;
  const kubeconfig = layout.kubeconfigs.controllerManager;
  return [
    layout.binaries.kubeControllerManager,
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--client-ca-file=${pki.ca.cert}`,
    `--root-ca-file=${pki.ca.cert}`,
    `--cluster-signing-cert-file=${pki.ca.cert}`,
    `--cluster-signing-key-file=${pki.ca.key}`,
    `--cluster-name=${layout.clusterName}`,
    // Node IPAM from the kind config's podSubnet, as kubeadm does when networking.podSubnet is set.
    "--allocate-node-cidrs=true",
    `--cluster-cidr=${layout.podSubnets.join(",")}`,
    `--service-cluster-ip-range=${layout.serviceSubnets.join(",")}`,
    `--service-account-private-key-file=${pki.serviceAccount.key}`,
    "--use-service-account-credentials=true",
    "--controllers=*,bootstrapsigner,tokencleaner",
    // kubeadm: true. One instance per cluster here, and a restarted one must not wait out the
    // previous holder's lease (15 s) before its controllers run.
    "--leader-elect=false",
    "--profiling=false",
  ];
}

export function schedulerArgv(layout: ControlPlaneLayout): string[] {
  const kubeconfig = layout.kubeconfigs.scheduler;
  return [
    layout.binaries.kubeScheduler,
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    "--bind-address=127.0.0.1",
    // As for the controller manager: a single instance.
    "--leader-elect=false",
    "--profiling=false",
  ];
}
