/**
 * Test support: one of OUR clusters as a Cilium reader sees it — a real etcd with client-cert auth,
 * a real Kubernetes control plane (testing/kubernetes.ts) with the mesh CRDs, and our
 * clustermesh-apiserver process publishing into the etcd as its ServiceAccount with its least
 * RBAC (as in clustermesh-apiserver/apiserver.root.test.ts). Helpers add and
 * remove services, pods (identity + endpoint) and nodes through the Kubernetes API.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, DiscoveryV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Etcd3 } from "etcd3";
import { MESH_CRDS, MESH_GROUP, MESH_VERSION } from "../../lib/api/crds.js";
import { MESH_ACCESS } from "../../lib/api/rbac.js";
import { freePort } from "../../lib/free-port.js";
import { TestEtcd } from "../../lib/kvstore/testing.js";
import {
  isRunning,
  type ProcessRef,
  startDaemon,
  stopProcess,
  WaitAborted,
  waitFor,
} from "../../lib/process.js";
import { TestKubernetes } from "../../testing/kubernetes.js";
import { type EtcdClientFiles, etcdClientFiles } from "./cilium.js";

export const NAMESPACE = "demo";
const API_VERSION = `${MESH_GROUP}/${MESH_VERSION}`;

export class OurCluster {
  // The tests' nodes take pod CIDRs in 10.0.0.0/12 (10.5.x, 10.7.x): kube-controller-manager's
  // node IPAM refuses to start, and with it every controller, on a Node outside its cluster CIDR.
  readonly kube = new TestKubernetes({ podSubnet: "10.0.0.0/12" });
  readonly etcd = new TestEtcd();
  admin!: Etcd3;
  private apiserver: ProcessRef | undefined;
  private readyzUrl = "";
  private kc!: KubeConfig;
  private kubeconfig = "";

  constructor(
    readonly name: string,
    readonly id: number,
  ) {}

  get logFile(): string {
    return join(this.etcd.dir, "apiserver.log");
  }

  async start(): Promise<void> {
    await Promise.all([this.kube.start(), this.etcd.start()]);
    this.admin = this.etcd.client(`admin-${this.name}`);
    this.kc = this.kube.kubeConfig();
    await this.kube.createCrds(MESH_CRDS);
    this.kubeconfig = await this.kube.componentKubeconfig(MESH_ACCESS.clustermeshApiserver);
    await this.core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    await this.startApiServer();
  }

  private get core(): CoreV1Api {
    return this.kc.makeApiClient(CoreV1Api);
  }

  private get custom(): CustomObjectsApi {
    return this.kc.makeApiClient(CustomObjectsApi);
  }

  async startApiServer(): Promise<void> {
    const readyz = `127.0.0.1:${await freePort()}`;
    this.readyzUrl = `http://${readyz}`;
    const files = this.clientFiles(`admin-${this.name}`);
    this.apiserver = startDaemon({
      argv: [
        process.execPath,
        join(import.meta.dirname, "../../clustermesh-apiserver/main.js"),
        `--cluster-name=${this.name}`,
        `--cluster-id=${this.id}`,
        `--kubeconfig=${this.kubeconfig}`,
        `--etcd-servers=${this.etcd.url}`,
        `--etcd-cafile=${files.ca}`,
        `--etcd-certfile=${files.cert}`,
        `--etcd-keyfile=${files.key}`,
        `--readyz-address=${readyz}`,
        "--max-connected-clusters=255",
        "--heartbeat-interval=1000",
        "--log-level=warn",
      ],
      logFile: this.logFile,
    });
    await waitFor(
      "our clustermesh-apiserver /readyz 200",
      async () => {
        if (this.apiserver && !isRunning(this.apiserver))
          throw new WaitAborted(`our clustermesh-apiserver exited; see ${this.logFile}\n${this.logTail()}`);
        const response = await fetch(`${this.readyzUrl}/readyz`);
        await response.text();
        return response.status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  }

  logTail(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, "utf8").slice(-3000) : "(no log)";
  }

  /** Certificate files for an etcd user of our etcd (the certificate's CN), and the endpoint. */
  clientFiles(user: string): EtcdClientFiles {
    return etcdClientFiles(this.etcd, user);
  }

  /** A global service with one ready backend. */
  async addService(name: string, clusterIp: string, backendIp: string): Promise<void> {
    await this.core.createNamespacedService({
      namespace: NAMESPACE,
      body: {
        metadata: { name, namespace: NAMESPACE, annotations: { "service.cilium.io/global": "true" } },
        spec: {
          clusterIP: clusterIp,
          selector: { app: name },
          ports: [{ name: "http", port: 80, protocol: "TCP" }],
        },
      },
    });
    await this.kc.makeApiClient(DiscoveryV1Api).createNamespacedEndpointSlice({
      namespace: NAMESPACE,
      body: {
        metadata: { name: `${name}-1`, namespace: NAMESPACE, labels: { "kubernetes.io/service-name": name } },
        addressType: "IPv4",
        ports: [{ name: "http", port: 8080, protocol: "TCP" }],
        endpoints: [{ addresses: [backendIp], conditions: { ready: true } }],
      },
    });
  }

  async removeService(name: string): Promise<void> {
    await this.core.deleteNamespacedService({ name, namespace: NAMESPACE });
    await this.kc
      .makeApiClient(DiscoveryV1Api)
      .deleteNamespacedEndpointSlice({ name: `${name}-1`, namespace: NAMESPACE });
  }

  /** A pod as the agent records it: its identity (MeshIdentity) and endpoint (MeshEndpoint). */
  async addPod(name: string, ip: string, identity: number, hostIp: string, ipsecKey?: number): Promise<void> {
    await this.custom.createClusterCustomObject({
      group: MESH_GROUP,
      version: MESH_VERSION,
      plural: "meshidentities",
      body: {
        apiVersion: API_VERSION,
        kind: "MeshIdentity",
        metadata: { name: String(identity) },
        "security-labels": {
          "k8s:app": name,
          "k8s:io.kubernetes.pod.namespace": NAMESPACE,
          "k8s:io.cilium.k8s.policy.cluster": this.name,
        },
      },
    });
    await this.custom.createNamespacedCustomObject({
      group: MESH_GROUP,
      version: MESH_VERSION,
      namespace: NAMESPACE,
      plural: "meshendpoints",
      body: {
        apiVersion: API_VERSION,
        kind: "MeshEndpoint",
        metadata: { name, namespace: NAMESPACE },
        status: {
          id: `lxc-${name}`,
          containerID: name,
          identity: { id: identity, labels: [] },
          networking: { addressing: [{ ipv4: ip }], node: hostIp },
          namedPorts: [{ name: "http", port: 8080, protocol: "TCP" }],
          ...(ipsecKey ? { encryption: { key: ipsecKey } } : {}),
          state: "ready",
        },
      },
    });
  }

  async removePod(name: string, identity: number): Promise<void> {
    await this.custom.deleteNamespacedCustomObject({
      group: MESH_GROUP,
      version: MESH_VERSION,
      namespace: NAMESPACE,
      plural: "meshendpoints",
      name,
    });
    await this.custom.deleteClusterCustomObject({
      group: MESH_GROUP,
      version: MESH_VERSION,
      plural: "meshidentities",
      name: String(identity),
    });
  }

  /** A node (core Node + the agent's MeshNode with a CiliumInternalIP and an IPsec key). */
  async addNode(name: string, ip: string, podCidr: string, routerIp: string): Promise<void> {
    await this.core.createNode({
      body: {
        metadata: { name, labels: { "kubernetes.io/hostname": name } },
        spec: { podCIDRs: [podCidr] },
        status: { addresses: [{ type: "InternalIP", address: ip }] },
      },
    });
    await this.custom.createClusterCustomObject({
      group: MESH_GROUP,
      version: MESH_VERSION,
      plural: "meshnodes",
      body: {
        apiVersion: API_VERSION,
        kind: "MeshNode",
        metadata: { name },
        spec: {
          addresses: [
            { type: "InternalIP", ip },
            { type: "CiliumInternalIP", ip: routerIp },
          ],
          ipam: { podCIDRs: [podCidr] },
          encryption: { key: 3 },
          clusterName: this.name,
          clusterID: this.id,
        },
      },
    });
  }

  async removeNode(name: string): Promise<void> {
    await this.custom.deleteClusterCustomObject({
      group: MESH_GROUP,
      version: MESH_VERSION,
      plural: "meshnodes",
      name,
    });
    await this.core.deleteNode({ name });
  }

  /** Keys under `prefix` in our etcd, read as admin. */
  async keys(prefix: string): Promise<string[]> {
    return await this.admin.getAll().prefix(prefix).keys();
  }

  async stop(): Promise<void> {
    try {
      if (this.apiserver) await stopProcess(this.apiserver);
    } finally {
      await Promise.allSettled([this.kube.stop(), this.etcd.stop()]);
    }
  }
}
