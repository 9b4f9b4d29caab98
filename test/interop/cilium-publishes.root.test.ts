/**
 * We read Cilium (issue 15 part 3): in a two-cluster lab, cluster c2 is published by CILIUM's own
 * clustermesh-apiserver (pinned release) instead of ours — run against c2's real kube-apiserver,
 * with Cilium's CRDs and the CiliumNode/CiliumIdentity/CiliumEndpoint objects a Cilium agent would
 * create for c2's nodes and pods, writing into c2's clustermesh etcd (ours stopped, its keys wiped).
 * c1's agents (ours) connect to it like to any remote: c2's nodes, identities and ipcache entries
 * arrive, nothing is refused, and a global service with backends in both clusters is answered by
 * both from a c1 pod. Root: a two-cluster lab per release.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { RESERVED_IDENTITY } from "../../agent/identity/labels.js";
import { componentKubeconfigPath } from "../../lab/control-plane.js";
import { LabJournal } from "../../lab/state.js";
import type { AgentStatus } from "../../lib/api/agent-status.js";
import { cidrSize, nthAddress, parseCidr } from "../../lib/cidr.js";
import { connectEtcd, tlsFromFiles } from "../../lib/etcd/client.js";
import { isRunning, waitFor } from "../../lib/process.js";
import { echoDeploymentYaml } from "../../testing/echo-deployment.js";
import type { CliResult } from "../../testing/lab-fixture.js";
import { type MeshProvider, meshProvider } from "../multicluster/provider.js";
import { CILIUM_RELEASES, type CiliumBinaries, ciliumBinaries, writeEtcdClientConfig } from "./cilium.js";
import { CiliumClusterMeshApiserver, ciliumCrdFiles } from "./cilium-apiserver.js";

type Cluster = "c1" | "c2";

interface PodInfo {
  name: string;
  node: string;
  ip: string;
  ready: boolean;
}

function ok(result: CliResult, what: string): string {
  assert.equal(result.status, 0, `${what}: ${result.stderr}${result.stdout}`);
  return result.stdout;
}

function manifest(ns: string, cluster: Cluster): string {
  const client =
    cluster === "c1"
      ? `---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ${ns}, labels: {role: client}}
spec:
  containers: [{name: client, image: clustermesh/client}]
`
      : "";
  return `apiVersion: v1
kind: Namespace
metadata: {name: ${ns}}
---
${echoDeploymentYaml(ns, 2)}---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: ${ns}
  annotations: {service.cilium.io/global: "true"}
spec:
  selector: {app: echo}
  ports:
  - {name: http, port: 80, targetPort: http}
${client}`;
}

interface MeshNodeObject {
  metadata: { name: string };
  spec: {
    addresses: { type: string; ip: string }[];
    ipam: { podCIDRs: string[] };
    encryption?: { key?: number };
    bootID?: string;
  };
}
interface NodeObject {
  metadata: { name: string; labels?: Record<string, string> };
}
interface MeshIdentityObject {
  metadata: { name: string };
  "security-labels": Record<string, string>;
}
interface MeshEndpointObject {
  metadata: { name: string; namespace: string };
  status: {
    id: string;
    identity: { id: number; labels: string[] };
    networking: { addressing: { ipv4?: string }[]; node: string };
    encryption?: { key?: number };
    state: string;
  };
}

interface CiliumObject {
  kind: string;
  metadata: { name: string; namespace?: string };
}

/**
 * The Cilium objects a Cilium agent keeps for c2's nodes and pods, taken from what our c2 agents
 * recorded (MeshNode/MeshIdentity/MeshEndpoint mirror Cilium's shapes, lib/api/crds.ts):
 * https://github.com/cilium/cilium/blob/v1.18.4/pkg/k8s/apis/cilium.io/v2/types.go
 */
function ciliumObjects(
  nodeLabels: Record<string, Record<string, string>>,
  nodes: MeshNodeObject[],
  identities: MeshIdentityObject[],
  endpoints: MeshEndpointObject[],
): CiliumObject[] {
  return [
    ...nodes.map((n) => ({
      apiVersion: "cilium.io/v2",
      kind: "CiliumNode",
      // the agent copies its Node's labels (they travel in the kvstore node value)
      metadata: { name: n.metadata.name, labels: nodeLabels[n.metadata.name] ?? {} },
      spec: {
        addresses: n.spec.addresses,
        ipam: { podCIDRs: n.spec.ipam.podCIDRs },
        health: { ipv4: healthIp(n.spec.ipam.podCIDRs[0]) },
        ...(n.spec.bootID ? { bootid: n.spec.bootID } : {}),
        ...(n.spec.encryption?.key ? { encryption: { key: n.spec.encryption.key } } : {}),
      },
    })),
    ...identities.map((i) => ({
      apiVersion: "cilium.io/v2",
      kind: "CiliumIdentity",
      metadata: { name: i.metadata.name },
      "security-labels": i["security-labels"],
    })),
    ...endpoints.map((e) => ({
      apiVersion: "cilium.io/v2",
      kind: "CiliumEndpoint",
      metadata: { name: e.metadata.name, namespace: e.metadata.namespace },
      status: {
        id: 1,
        identity: { id: e.status.identity.id, labels: e.status.identity.labels },
        networking: { addressing: e.status.networking.addressing, node: e.status.networking.node },
        ...(e.status.encryption?.key ? { encryption: { key: e.status.encryption.key } } : {}),
        state: "ready",
      },
    })),
  ];
}

/**
 * The node's health endpoint address: a Cilium agent allocates it from its pod CIDR (we run no
 * health endpoint; the last address is one our IPAM hands out last).
 */
function healthIp(podCidr: string): string {
  const cidr = parseCidr(podCidr);
  return nthAddress(cidr, cidrSize(cidr) - 2n);
}

for (const release of CILIUM_RELEASES) {
  describe(`our agents read a cluster published by Cilium ${release}'s clustermesh-apiserver (root: two-cluster lab)`, () => {
    const ns = `rc-${Math.random().toString(36).slice(2, 7)}`;
    let mesh: MeshProvider;
    let cilium: CiliumBinaries;
    let apiserver: CiliumClusterMeshApiserver | undefined;
    let c2Endpoints: MeshEndpointObject[] = [];
    let c2IdentityIds: number[] = [];
    let c2Nodes: MeshNodeObject[] = [];
    let c2CiliumObjects: CiliumObject[] = [];
    const applyCilium = (objects: CiliumObject[]) =>
      k("c2", ["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }));
    /** Our clustermesh-apiserver of c2, stopped in before(): it must stay stopped. */

    const k = (cluster: Cluster, args: string[], input?: string) =>
      ok(mesh.kubectl(cluster, args, input), `kubectl ${args.join(" ")}`);
    const items = <T>(cluster: Cluster, args: string[]): T[] =>
      JSON.parse(k(cluster, ["get", ...args, "-o", "json"])).items as T[];
    const pods = (cluster: Cluster, selector: string): PodInfo[] =>
      items<{
        metadata: { name: string; deletionTimestamp?: string };
        spec: { nodeName: string };
        status: { podIP?: string; conditions?: { type: string; status: string }[] };
      }>(cluster, ["-n", ns, "pods", "-l", selector]).map((p) => ({
        name: p.metadata.name,
        node: p.spec.nodeName,
        ip: p.status.podIP ?? "",
        ready:
          !p.metadata.deletionTimestamp &&
          (p.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"),
      }));
    const echoIps = (cluster: Cluster) =>
      pods(cluster, "app=echo")
        .filter((p) => p.ready)
        .map((p) => p.ip)
        .sort();
    const clientNode = () => pods("c1", "role=client")[0].node;
    const lab = () => {
      assert.ok(mesh.lab, "needs the lab");
      return mesh.lab;
    };
    const c2Status = async (node: string) =>
      (await lab().agentStatus(node)).clustermesh.remoteClusters.find((r) => r.name === "c2");

    before(async () => {
      cilium = ciliumBinaries(release);
      // Direct mode: c2's publisher becomes Cilium's `clustermesh-apiserver clustermesh`, which runs
      // no KVStoreMesh, so with ours on, c2's agents (pointed at their local cache) would never
      // learn c1 and c2's replies to c1 would have no route.
      mesh = await meshProvider({ MESH_KVSTOREMESH: "false" });
      try {
        const journal = LabJournal.open(lab().name);
        assert.ok(journal);
        for (const cluster of ["c1", "c2"] as const) {
          const file = join(mesh.dir, `app-${cluster}.yaml`);
          writeFileSync(file, manifest(ns, cluster));
          k(cluster, ["apply", "-f", file]);
        }
        await waitFor(
          "2 echo pods in each cluster and the c1 client ready",
          () =>
            echoIps("c1").length === 2 &&
            echoIps("c2").length === 2 &&
            pods("c1", "role=client").some((p) => p.ready),
          { timeoutMs: 120_000, intervalMs: 500 },
        );

        // c2 is published by Cilium, not us: c2's clustermesh-apiserver pod keeps only its etcd
        // (a new pod, so a new, empty etcd), so that everything c1 reads comes from Cilium's code.
        k("c2", [
          "-n",
          "kube-system",
          "patch",
          "deployment",
          "clustermesh-apiserver",
          "--type=json",
          `-p=${JSON.stringify([{ op: "remove", path: "/spec/template/spec/containers/1" }])}`,
        ]);
        k("c2", [
          "-n",
          "kube-system",
          "rollout",
          "status",
          "deployment/clustermesh-apiserver",
          "--timeout=120s",
        ]);
        const admin = lab().clustermeshAdmin("c2");
        const etcd = connectEtcd({ endpoints: [admin.endpoint], tls: tlsFromFiles(admin) });
        try {
          await etcd.delete().prefix("cilium/").exec();
        } finally {
          etcd.close();
        }

        // Cilium's CRDs, and the objects a Cilium agent keeps, for c2's nodes and pods
        k("c2", ["apply", ...ciliumCrdFiles(release).flatMap((f) => ["-f", f])]);
        k("c2", [
          "wait",
          "--for=condition=Established",
          "--timeout=60s",
          ...ciliumCrdFiles(release).map((f) => `crd/${basename(f, ".yaml")}.cilium.io`),
        ]);
        c2Nodes = items<MeshNodeObject>("c2", ["meshnodes"]);
        c2Endpoints = items<MeshEndpointObject>("c2", ["-n", ns, "meshendpoints"]);
        c2IdentityIds = [...new Set(c2Endpoints.map((e) => e.status.identity.id))];
        const identities = items<MeshIdentityObject>("c2", ["meshidentities"]).filter((i) =>
          c2IdentityIds.includes(Number(i.metadata.name)),
        );
        assert.equal(c2Endpoints.length, 2, "our c2 agents recorded both echo pods");
        assert.equal(identities.length, c2IdentityIds.length, "and their identities");
        const nodeLabels = Object.fromEntries(
          items<NodeObject>("c2", ["nodes"]).map((n) => [n.metadata.name, n.metadata.labels ?? {}]),
        );
        c2CiliumObjects = ciliumObjects(nodeLabels, c2Nodes, identities, c2Endpoints);
        applyCilium(c2CiliumObjects);

        apiserver = new CiliumClusterMeshApiserver(cilium, {
          dir: mesh.dir,
          clusterName: "c2",
          clusterId: 2,
          kubeconfig: componentKubeconfigPath(journal, "c2", "meshctl"),
          etcdConfig: writeEtcdClientConfig(join(mesh.dir, "c2-clustermesh-etcd.yaml"), admin),
        });
        await apiserver.start();
        await apiserver.waitReady();

        ok(
          mesh.meshctl([
            "clustermesh",
            "connect",
            "--context",
            mesh.context("c1"),
            "--destination-context",
            mesh.context("c2"),
          ]),
          "meshctl clustermesh connect",
        );
      } catch (error) {
        await apiserver?.stop();
        mesh.down();
        throw new Error(
          `setup failed${apiserver ? `\n--- Cilium's apiserver ---\n${apiserver.logTail()}` : ""}`,
          {
            cause: error,
          },
        );
      }
    });

    after(async () => {
      try {
        await apiserver?.stop();
      } finally {
        mesh?.down();
      }
    });

    it("c2's clustermesh etcd holds what Cilium's clustermesh-apiserver wrote, ours stays stopped", async () => {
      const c2Pods = JSON.parse(
        k("c2", [
          "-n",
          "kube-system",
          "get",
          "pods",
          "-l",
          "app.kubernetes.io/name=clustermesh-apiserver",
          "-o",
          "json",
        ]),
      ).items as { spec: { containers: { name: string }[] } }[];
      assert.deepEqual(
        c2Pods.map((p) => p.spec.containers.map((c) => c.name)),
        [["etcd"]],
        "c2's clustermesh-apiserver pod runs its etcd only, not our clustermesh-apiserver",
      );
      assert.ok(apiserver?.process && isRunning(apiserver.process), "Cilium's is");
      const admin = lab().clustermeshAdmin("c2");
      const etcd = connectEtcd({ endpoints: [admin.endpoint], tls: tlsFromFiles(admin) });
      let keys: string[];
      try {
        keys = (await etcd.getAll().prefix("cilium/").keys()).sort();
      } finally {
        etcd.close();
      }
      const under = (prefix: string) => keys.filter((key) => key.startsWith(prefix));
      assert.equal(under("cilium/state/nodes/v1/c2/").length, 2, keys.join("\n"));
      assert.equal(under("cilium/state/ip/v1/default/").length, 2, keys.join("\n"));
      assert.deepEqual(under(`cilium/state/services/v1/c2/${ns}/`), [
        `cilium/state/services/v1/c2/${ns}/echo`,
      ]);
      for (const id of c2IdentityIds)
        assert.ok(keys.includes(`cilium/state/identities/v1/id/${id}`), `identity ${id}`);
      assert.ok(keys.includes("cilium/cluster-config/c2"), "Cilium's cluster config");
      // the sync canaries Cilium's agents wait for, written by Cilium's code
      for (const kind of ["nodes", "services", "identities", "ip"])
        assert.ok(keys.includes(`cilium/synced/c2/cilium/state/${kind}/v1`), `canary ${kind}`);
    });

    it("meshctl clustermesh status --wait: every c1 node connected to the Cilium-published c2", () => {
      const out = ok(
        mesh.meshctl([
          "clustermesh",
          "status",
          "--context",
          mesh.context("c1"),
          "--wait",
          "--wait-duration",
          "2m",
          "-o",
          "json",
        ]),
        "clustermesh status",
      );
      const report = JSON.parse(out);
      const summary = report.connectivity ?? report.summary ?? report;
      assert.ok(summary.totalNodes >= 2, out);
      assert.equal(summary.fullyConnected, summary.totalNodes, out);
    });

    it("c2's nodes, identities and ipcache entries arrive in every c1 agent, nothing refused", async () => {
      const c2PodIps = c2Endpoints.map((e) => e.status.networking.addressing[0].ipv4 ?? "").sort();
      for (const node of ["c1-control-plane", "c1-worker"]) {
        const remote = await waitFor(
          `${node}: c2 ready with its 2 nodes, ${c2IdentityIds.length} identities and 2 endpoints`,
          async () => {
            const r = await c2Status(node);
            return r?.ready &&
              r.numNodes === 2 &&
              r.numEndpoints >= 2 &&
              r.numIdentities >= c2IdentityIds.length
              ? r
              : undefined;
          },
          { timeoutMs: 60_000, intervalMs: 200 },
        );
        assert.equal(remote.config.clusterId, 2, "Cilium's cluster config read");
        assert.deepEqual(remote.rejectedNow, {}, JSON.stringify(remote));
        assert.deepEqual(remote.rejectedTotal, {}, JSON.stringify(remote));
        assert.deepEqual(remote.ignoredNow, {}, JSON.stringify(remote));
        const status = await lab().agentStatus(node);
        for (const n of c2Nodes) {
          const nodeIp = n.spec.addresses.find((a) => a.type === "InternalIP")?.ip;
          const host = status.ipcache.find((i) => i.prefix === `${nodeIp}/32`);
          assert.ok(
            host?.remoteCluster && host.identity === RESERVED_IDENTITY.remoteNode,
            `${node}: ${nodeIp} is a remote node`,
          );
          for (const podCidr of n.spec.ipam.podCIDRs) {
            const route = status.ipcache.find((i) => i.prefix === podCidr);
            assert.ok(
              route?.remoteCluster,
              `${node}: ${podCidr} of ${n.metadata.name}: ${JSON.stringify(route)}`,
            );
            assert.equal(route.tunnelEndpoint, nodeIp, `${node}: ${podCidr} via ${n.metadata.name}`);
          }
        }
        const remoteIds = status.clustermesh.remoteIdentities
          .filter((i) => i.cluster === "c2")
          .map((i) => i.id);
        for (const id of c2IdentityIds) assert.ok(remoteIds.includes(id), `${node}: identity ${id} of c2`);
        for (const e of c2Endpoints) {
          const ip = e.status.networking.addressing[0].ipv4;
          const entry = status.ipcache.find((i) => i.prefix === `${ip}/32`);
          assert.ok(entry?.remoteCluster, `${node}: ipcache ${ip}: ${JSON.stringify(entry)}`);
          assert.equal(entry.identity, e.status.identity.id, `${node}: ${ip}'s identity`);
          assert.equal(entry.tunnelEndpoint, e.status.networking.node, `${node}: ${ip} via its node`);
        }
        assert.deepEqual(c2PodIps, echoIps("c2"));
      }
    });

    it("a global service with backends in both clusters is answered by both from a c1 pod", async () => {
      const clusterIp = k("c1", ["-n", ns, "get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}"]);
      const c1Ips = echoIps("c1");
      const c2Ips = echoIps("c2");
      await waitFor(
        "the c1 client's agent to merge c2's 2 backends into the service",
        async () => {
          const status = await lab().agentStatus(clientNode());
          const backends =
            status.services
              .find((s) => s.frontend === `${clusterIp}:80/TCP`)
              ?.backends.filter((b) => b.state === "active")
              .map((b) => b.address.split(":")[0]) ?? [];
          return (
            backends.filter((b) => c1Ips.includes(b)).length === 2 &&
            backends.filter((b) => c2Ips.includes(b)).length === 2
          );
        },
        { timeoutMs: 30_000, intervalMs: 200 },
      );
      const answered = k("c1", [
        "-n",
        ns,
        "exec",
        "client",
        "--",
        "sh",
        "-c",
        `for i in $(seq 30); do curl -s -m 3 http://${clusterIp}/; echo; done`,
      ])
        .split("\n")
        .filter((line) => line.startsWith("{"))
        .map((line) => JSON.parse(line).cluster as string);
      assert.deepEqual([...new Set(answered)].sort(), ["c1", "c2"], answered.join(","));
    });

    it("follows a CiliumEndpoint and a CiliumNode being deleted and created again", async () => {
      const endpoint = c2CiliumObjects.find((o) => o.kind === "CiliumEndpoint");
      const ciliumNode = c2CiliumObjects.find(
        (o) => o.kind === "CiliumNode" && o.metadata.name === "c2-worker",
      );
      assert.ok(endpoint && ciliumNode);
      const ip = c2Endpoints.find((e) => e.metadata.name === endpoint.metadata.name)?.status.networking
        .addressing[0].ipv4;
      const podCidr = c2Nodes.find((n) => n.metadata.name === "c2-worker")?.spec.ipam.podCIDRs[0];
      const c1Nodes = ["c1-control-plane", "c1-worker"];
      const inEveryC1Agent = async (what: string, predicate: (status: AgentStatus) => boolean) => {
        for (const node of c1Nodes)
          await waitFor(`${node}: ${what}`, async () => predicate(await lab().agentStatus(node)), {
            timeoutMs: 30_000,
            intervalMs: 200,
          });
      };
      const remoteOf = (status: AgentStatus) =>
        status.clustermesh.remoteClusters.find((r) => r.name === "c2");

      k("c2", ["-n", ns, "delete", "ciliumendpoint", endpoint.metadata.name]);
      await inEveryC1Agent(
        `${ip} gone with its CiliumEndpoint`,
        (s) => !s.ipcache.some((i) => i.prefix === `${ip}/32`) && remoteOf(s)?.numEndpoints === 1,
      );
      applyCilium([endpoint]);
      await inEveryC1Agent(
        `${ip} back`,
        (s) =>
          s.ipcache.some((i) => i.prefix === `${ip}/32` && i.remoteCluster) &&
          remoteOf(s)?.numEndpoints === 2,
      );

      // Without its node, the pods on it are outside every address c2 owns: our agents refuse their
      // ipcache entries and service backends (foreign-address, our hijack guard; Cilium's agents
      // keep them) until the node is back, then take them again.
      const workerIp = c2Nodes
        .find((n) => n.metadata.name === "c2-worker")
        ?.spec.addresses.find((a) => a.type === "InternalIP")?.ip;
      const onWorker = c2Endpoints
        .filter((e) => e.status.networking.node === workerIp)
        .map((e) => `${e.status.networking.addressing[0].ipv4}/32`);
      assert.equal(onWorker.length, 2, "both echo pods run on c2-worker (the control plane is tainted)");
      k("c2", ["delete", "ciliumnode", ciliumNode.metadata.name]);
      await inEveryC1Agent(
        `c2-worker (${podCidr}) gone with its CiliumNode, its pods' entries refused`,
        (s) =>
          !s.ipcache.some((i) => i.prefix === podCidr || onWorker.includes(i.prefix)) &&
          remoteOf(s)?.numNodes === 1 &&
          (remoteOf(s)?.rejectedNow["foreign-address"] ?? 0) > 0,
      );
      applyCilium([ciliumNode]);
      await inEveryC1Agent(
        "c2-worker and its pods' entries back, nothing refused now",
        (s) =>
          s.ipcache.some((i) => i.prefix === podCidr && i.remoteCluster) &&
          onWorker.every((prefix) => s.ipcache.some((i) => i.prefix === prefix && i.remoteCluster)) &&
          remoteOf(s)?.numNodes === 2 &&
          Object.keys(remoteOf(s)?.rejectedNow ?? {}).length === 0,
      );
      const clusterIp = k("c1", ["-n", ns, "get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}"]);
      const c2Ips = echoIps("c2");
      await waitFor(
        "c2's backends in the c1 client's agent again",
        async () =>
          (await lab().agentStatus(clientNode())).services
            .find((s) => s.frontend === `${clusterIp}:80/TCP`)
            ?.backends.filter((b) => c2Ips.includes(b.address.split(":")[0])).length === 2,
        { timeoutMs: 30_000, intervalMs: 200 },
      );
    });
  });
}
