import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  apiServerArgv,
  type ControlPlaneLayout,
  controllerManagerArgv,
  etcdArgv,
  schedulerArgv,
} from "./flags.js";
import type { KubernetesPki } from "./pki.js";

const paths = (name: string) => ({ cert: `/pki/${name}.crt`, key: `/pki/${name}.key`, ca: "/pki/ca.crt" });
const pki: KubernetesPki = {
  dir: "/pki",
  ca: { cert: "/pki/ca.crt", key: "/pki/ca.key" },
  etcdCa: { cert: "/pki/etcd/ca.crt", key: "/pki/etcd/ca.key" },
  etcdServer: paths("etcd/server"),
  etcdHealthcheckClient: paths("etcd/healthcheck-client"),
  apiServerEtcdClient: paths("etcd/apiserver-etcd-client"),
  apiServer: paths("apiserver"),
  apiServerKubeletClient: paths("apiserver-kubelet-client"),
  admin: paths("admin"),
  controllerManager: paths("controller-manager"),
  scheduler: paths("scheduler"),
  serviceAccount: { key: "/pki/sa.key", pub: "/pki/sa.pub" },
  kubelets: {},
};
const layout: ControlPlaneLayout = {
  clusterName: "c1",
  nodeName: "c1-control-plane",
  nodeIp: "172.31.4.2",
  podSubnets: ["10.204.0.0/20", "fd00:204::/56"],
  serviceSubnets: ["10.204.128.0/20"],
  nodePortRange: "30000-32767",
  etcdDataDir: "/data/etcd",
  pki,
  kubeconfigs: { controllerManager: "/kc/cm.conf", scheduler: "/kc/sched.conf" },
  binaries: {
    etcd: "/b/etcd",
    kubeApiserver: "/b/kas",
    kubeControllerManager: "/b/kcm",
    kubeScheduler: "/b/ks",
  },
};
const flag = (argv: string[], name: string) =>
  argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ??
  (argv.includes(`--${name}`) ? "" : undefined);

describe("control-plane command lines (kubeadm's flags)", () => {
  it("kube-apiserver: Node+RBAC, x509 client CA, service-account keys, the cluster's service CIDR and NodePorts", () => {
    const argv = apiServerArgv(layout);
    assert.equal(argv[0], "/b/kas");
    assert.equal(flag(argv, "authorization-mode"), "Node,RBAC");
    assert.equal(flag(argv, "enable-admission-plugins"), "NodeRestriction");
    assert.equal(flag(argv, "client-ca-file"), "/pki/ca.crt");
    assert.equal(flag(argv, "service-account-signing-key-file"), "/pki/sa.key");
    assert.equal(flag(argv, "service-account-key-file"), "/pki/sa.pub");
    assert.equal(flag(argv, "service-account-issuer"), "https://kubernetes.default.svc.cluster.local");
    assert.equal(flag(argv, "service-cluster-ip-range"), "10.204.128.0/20");
    assert.equal(flag(argv, "service-node-port-range"), "30000-32767");
    assert.equal(flag(argv, "advertise-address"), "172.31.4.2");
    assert.equal(flag(argv, "etcd-servers"), "https://127.0.0.1:2379");
    assert.equal(flag(argv, "etcd-cafile"), "/pki/etcd/ca.crt");
    assert.equal(flag(argv, "kubelet-client-certificate"), "/pki/apiserver-kubelet-client.crt");
  });

  it("kube-controller-manager: node IPAM from the podSubnet, token signing key, its own kubeconfig", () => {
    const argv = controllerManagerArgv(layout);
    assert.equal(flag(argv, "allocate-node-cidrs"), "true");
    assert.equal(flag(argv, "cluster-cidr"), "10.204.0.0/20,fd00:204::/56");
    assert.equal(flag(argv, "service-account-private-key-file"), "/pki/sa.key");
    assert.equal(flag(argv, "use-service-account-credentials"), "true");
    assert.equal(flag(argv, "kubeconfig"), "/kc/cm.conf");
    assert.equal(flag(argv, "root-ca-file"), "/pki/ca.crt");
  });

  it("kube-scheduler uses its kubeconfig and listens on loopback only", () => {
    const argv = schedulerArgv(layout);
    assert.equal(flag(argv, "kubeconfig"), "/kc/sched.conf");
    assert.equal(flag(argv, "bind-address"), "127.0.0.1");
  });

  it("etcd: client-certificate auth on loopback and the node IP (as kubeadm), a fresh token per start", () => {
    const argv = etcdArgv(layout, "tok");
    assert.equal(flag(argv, "listen-client-urls"), "https://127.0.0.1:2379,https://172.31.4.2:2379");
    assert.equal(flag(argv, "advertise-client-urls"), "https://172.31.4.2:2379");
    assert.equal(flag(argv, "client-cert-auth"), "true");
    assert.equal(flag(argv, "trusted-ca-file"), "/pki/etcd/ca.crt");
    assert.equal(flag(argv, "initial-cluster"), "c1-control-plane=https://127.0.0.1:2380");
    assert.equal(flag(argv, "initial-cluster-token"), "tok");
    assert.equal(flag(argv, "unsafe-no-fsync"), "");
  });
});
