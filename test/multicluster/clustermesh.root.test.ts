/**
 * Two connected clusters end to end (issue 6, "Checked by"): one lab for the whole file, scenarios in
 * order. Everything goes through kubectl, meshctl and the agents' status API, as a user would; the
 * lab-only scenarios (restarts by PID, pulling a node off the bridge, writing into a remote etcd)
 * skip on kind (MESH_E2E_PROVIDER=kind, see provider.ts).
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { KvStoreMeshRemoteStatus } from "../../lib/api/kvstoremesh-status.js";
import { connectEtcd, tlsFromFiles } from "../../lib/etcd/client.js";
import { run } from "../../lib/exec.js";
import { waitFor } from "../../lib/process.js";
import { echoDeploymentYaml } from "../../testing/echo-deployment.js";
import type { CliResult } from "../../testing/lab-fixture.js";
import { type ClusterRef, type MeshProvider, meshProvider } from "./provider.js";

/** Short TTL so the unreachable-cluster scenario stays quick; long enough for an etcd restart. */
const BACKEND_TTL_S = 20;
/**
 * MESH_KVSTOREMESH=false: the lab's agents read the remote cluster directly; default: through their
 * own clustermesh-apiserver's KVStoreMesh cache, where the remote's etcd session (and the
 * validation of its entries) is the apiserver's.
 */
const KVSTOREMESH = process.env.MESH_KVSTOREMESH !== "false";
const NS = `mc-${Math.random().toString(36).slice(2, 7)}`;
const CLUSTERS: ClusterRef[] = ["c1", "c2"];

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

function manifest(cluster: ClusterRef): string {
  return `apiVersion: v1
kind: Namespace
metadata: {name: ${NS}}
---
${echoDeploymentYaml(NS, 2)}---
apiVersion: v1
kind: Service
metadata:
  name: echo
  namespace: ${NS}
  annotations: {service.cilium.io/global: "true"}
spec:
  type: NodePort
  selector: {app: echo}
  ports:
  - {name: http, port: 80, targetPort: http}
---
apiVersion: v1
kind: Pod
metadata: {name: client, namespace: ${NS}, labels: {role: client-${cluster}}}
spec:
  containers: [{name: client, image: clustermesh/client}]
`;
}

describe("clustermesh across two clusters (root: two-cluster lab)", () => {
  let mesh: MeshProvider;
  const k = (cluster: ClusterRef, args: string[]) =>
    ok(mesh.kubectl(cluster, args), `kubectl ${args.join(" ")}`);
  const pods = (cluster: ClusterRef, selector: string): PodInfo[] =>
    JSON.parse(k(cluster, ["-n", NS, "get", "pods", "-l", selector, "-o", "json"])).items.map(
      (p: {
        metadata: { name: string; deletionTimestamp?: string };
        spec: { nodeName: string };
        status: { podIP?: string; conditions?: { type: string; status: string }[] };
      }) => ({
        name: p.metadata.name,
        node: p.spec.nodeName,
        ip: p.status.podIP ?? "",
        ready:
          !p.metadata.deletionTimestamp &&
          (p.status.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True"),
      }),
    );
  const echoIps = (cluster: ClusterRef) =>
    pods(cluster, "app=echo")
      .filter((p) => p.ready)
      .map((p) => p.ip)
      .sort();
  const clusterIp = (cluster: ClusterRef) =>
    k(cluster, ["-n", NS, "get", "svc", "echo", "-o", "jsonpath={.spec.clusterIP}"]);
  const inClient = (cluster: ClusterRef, script: string) =>
    k(cluster, ["-n", NS, "exec", "client", "--", "sh", "-c", script]);
  /** Which clusters answered `count` requests to the service from cluster's client. */
  const answeringClusters = (cluster: ClusterRef, count: number): string[] =>
    inClient(cluster, `for i in $(seq ${count}); do curl -s -m 3 http://${clusterIp(cluster)}/; echo; done`)
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line).cluster as string);
  const annotate = (cluster: ClusterRef, annotation: string) =>
    k(cluster, ["-n", NS, "annotate", "--overwrite", "svc", "echo", annotation]);
  const clientNode = (cluster: ClusterRef) => pods(cluster, `role=client-${cluster}`)[0].node;

  /** The c1 agent's backends of the echo ClusterIP, split by cluster (lab: status API). */
  const c1Backends = async (): Promise<{ c1: string[]; c2: string[]; other: string[] }> => {
    const lab = mesh.lab;
    assert.ok(lab);
    const status = await lab.agentStatus(clientNode("c1"));
    const addresses =
      status.services
        .find((s) => s.frontend === `${c1ServiceIp}:80/TCP`)
        ?.backends.filter((b) => b.state === "active")
        .map((b) => b.address.split(":")[0]) ?? [];
    return {
      c1: addresses.filter((a) => c1Ips.includes(a)).sort(),
      c2: addresses.filter((a) => c2Ips.includes(a)).sort(),
      other: addresses.filter((a) => !c1Ips.includes(a) && !c2Ips.includes(a)),
    };
  };
  let c1ServiceIp = "";
  let c1Ips: string[] = [];
  let c2Ips: string[] = [];
  const refreshIps = () => {
    c1Ips = echoIps("c1");
    c2Ips = echoIps("c2");
  };
  const waitBackends = async (what: string, want: { c1: number; c2: number }, timeoutMs = 20_000) => {
    if (!mesh.lab) {
      // kind: from the traffic itself
      await waitFor(
        what,
        () => {
          const seen = new Set(answeringClusters("c1", 20));
          return want.c1 > 0 === seen.has("c1") && want.c2 > 0 === seen.has("c2");
        },
        { timeoutMs, intervalMs: 500 },
      );
      return;
    }
    await waitFor(
      `${what} (c1 agent: ${want.c1} local + ${want.c2} remote backends)`,
      async () => {
        const b = await c1Backends();
        return b.c1.length === want.c1 && b.c2.length === want.c2 && b.other.length === 0;
      },
      { timeoutMs, intervalMs: 100 },
    );
  };

  before(async () => {
    mesh = await meshProvider({ MESH_CLUSTERMESH_BACKEND_TTL: `${BACKEND_TTL_S}s` });
    try {
      for (const cluster of CLUSTERS) {
        const file = join(mesh.dir, `app-${cluster}.yaml`);
        writeFileSync(file, manifest(cluster));
        k(cluster, ["apply", "-f", file]);
      }
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
      await waitFor(
        "2 echo pods and the client ready in both clusters",
        () =>
          CLUSTERS.every((c) => echoIps(c).length === 2 && pods(c, `role=client-${c}`).some((p) => p.ready)),
        { timeoutMs: 120_000, intervalMs: 500 },
      );
      refreshIps();
      c1ServiceIp = clusterIp("c1");
    } catch (error) {
      mesh.down();
      throw error;
    }
  });

  after(() => mesh?.down());

  it("meshctl clustermesh status --wait reports every node connected", () => {
    for (const cluster of CLUSTERS) {
      const out = ok(
        mesh.meshctl([
          "clustermesh",
          "status",
          "--context",
          mesh.context(cluster),
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
      assert.equal(summary.fullyConnected, summary.totalNodes, `${cluster}: ${out}`);
      assert.ok(summary.totalNodes >= 2);
    }
  });

  it("connects pods across clusters, both ways, keeping the source address", () => {
    for (const [from, to] of [
      ["c1", "c2"],
      ["c2", "c1"],
    ] as const) {
      const client = pods(from, `role=client-${from}`)[0];
      for (const ip of echoIps(to)) {
        const answer = JSON.parse(inClient(from, `curl -s -m 5 http://${ip}:8080/`));
        assert.equal(answer.cluster, to, `${from} -> ${ip}`);
        assert.equal(answer.client, client.ip, "no SNAT across clusters");
      }
    }
  });

  it("answers a global service from backends of both clusters, on ClusterIP and NodePort", async () => {
    await waitBackends("merged backends", { c1: 2, c2: 2 });
    const seen = new Set(answeringClusters("c1", 30));
    assert.deepEqual([...seen].sort(), ["c1", "c2"]);
    if (mesh.lab) {
      const nodePort = JSON.parse(k("c1", ["-n", NS, "get", "svc", "echo", "-o", "json"])).spec.ports[0]
        .nodePort;
      const nodeIp = mesh.lab.nodeIp(clientNode("c1"));
      const viaNodePort = inClient(
        "c1",
        `for i in $(seq 30); do curl -s -m 3 http://${nodeIp}:${nodePort}/; echo; done`,
      )
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l).cluster);
      assert.deepEqual([...new Set(viaNodePort)].sort(), ["c1", "c2"], "NodePort merges remote backends too");
      const status = await mesh.lab.agentStatus(clientNode("c1"));
      const c2Status = status.clustermesh.remoteClusters.find((r) => r.name === "c2");
      assert.ok(c2Status?.ready, JSON.stringify(c2Status));
      assert.ok(c2Status.numSharedServices >= 1);
      assert.ok(c2Status.numIdentities >= 1, "remote identities known");
      assert.ok(status.clustermesh.remoteIdentities.some((i) => i.cluster === "c2"));
    }
  });

  it("hides a cluster's backends when it sets shared: false", async () => {
    annotate("c2", "service.cilium.io/shared=false");
    await waitBackends("c2 backends hidden", { c1: 2, c2: 0 });
    assert.deepEqual([...new Set(answeringClusters("c1", 10))], ["c1"]);
    annotate("c2", "service.cilium.io/shared=true");
    await waitBackends("c2 backends back", { c1: 2, c2: 2 });
  });

  it("applies affinity local, remote and none", async () => {
    annotate("c1", "service.cilium.io/affinity=local");
    await waitBackends("affinity local", { c1: 2, c2: 0 });
    assert.deepEqual([...new Set(answeringClusters("c1", 10))], ["c1"]);
    annotate("c1", "service.cilium.io/affinity=remote");
    await waitBackends("affinity remote", { c1: 0, c2: 2 });
    assert.deepEqual([...new Set(answeringClusters("c1", 10))], ["c2"]);
    annotate("c1", "service.cilium.io/affinity=none");
    await waitBackends("affinity none", { c1: 2, c2: 2 });
  });

  it("fails over to the other cluster when local backends go to zero (affinity local)", async () => {
    annotate("c1", "service.cilium.io/affinity=local");
    await waitBackends("affinity local", { c1: 2, c2: 0 });
    k("c1", ["-n", NS, "scale", "deployment", "echo", "--replicas=0"]);
    await waitBackends("failover to c2", { c1: 0, c2: 2 });
    assert.deepEqual([...new Set(answeringClusters("c1", 10))], ["c2"]);
    k("c1", ["-n", NS, "scale", "deployment", "echo", "--replicas=2"]);
    await waitFor("2 c1 echo pods ready again", () => echoIps("c1").length === 2, {
      timeoutMs: 60_000,
      intervalMs: 300,
    });
    refreshIps();
    await waitBackends("back to local", { c1: 2, c2: 0 });
    annotate("c1", "service.cilium.io/affinity=none");
    await waitBackends("affinity none", { c1: 2, c2: 2 });
  });

  /** Samples the c1 agent's remote backends every 100 ms while `action` runs; returns the samples that lacked some. */
  /** Samples c1's view of c2's backends while action runs; action may wait for more samples. */
  const sampleWhile = async (
    action: (moreSamples: (count: number) => Promise<void>) => Promise<void>,
  ): Promise<{ samples: number; gaps: string[] }> => {
    let stop = false;
    let samples = 0;
    const moreSamples = async (count: number) => {
      const target = samples + count;
      await waitFor(`${count} more samples`, () => samples >= target, { timeoutMs: 60_000, intervalMs: 100 });
    };
    const gaps: string[] = [];
    const sampler = (async () => {
      while (!stop) {
        try {
          const b = await c1Backends();
          samples++;
          if (b.c2.length !== c2Ips.length)
            gaps.push(`${new Date().toISOString()}: c2 backends ${b.c2.join(",")}`);
        } catch {
          // the agent itself restarting: not a sample
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      await action(moreSamples);
    } finally {
      stop = true;
      await sampler;
    }
    return { samples, gaps };
  };

  const remoteStatus = async (node: string, cluster: ClusterRef) =>
    (await mesh.lab?.agentStatus(node))?.clustermesh.remoteClusters.find((r) => r.name === cluster);
  /** KVStoreMesh mode: c1's clustermesh-apiserver's session to c2 (its /v1/cluster, via meshctl status). */
  const cachedC2 = (): KvStoreMeshRemoteStatus | undefined => {
    const result = mesh.meshctl(["clustermesh", "status", "--context", mesh.context("c1"), "-o", "json"]);
    try {
      const report = JSON.parse(result.stdout) as { kvstoremesh?: { remotes?: KvStoreMeshRemoteStatus[] } };
      return report.kvstoremesh?.remotes?.find((r) => r.name === "c2");
    } catch {
      return undefined; // not JSON (the command failed): not seen yet, the wait goes on
    }
  };
  /** Who holds the session to c2's etcd: the c1 agent, or (KVStoreMesh) c1's clustermesh-apiserver. */
  const c2Session = async (node: string) => {
    if (!KVSTOREMESH) {
      const status = await remoteStatus(node, "c2");
      return { failures: status?.numFailures ?? 0, ready: status?.ready === true };
    }
    const cached = cachedC2();
    return { failures: cached?.["num-failures"] ?? 0, ready: cached?.ready === true };
  };

  it("keeps every remote backend while the remote's clustermesh-apiserver pod is replaced with a wiped etcd", async (t) => {
    const lab = mesh.lab;
    if (!lab) return t.skip("needs the agents' status (lab)");
    const node = clientNode("c1");
    const { samples, gaps } = await sampleWhile(async (moreSamples) => {
      const before = (await c2Session(node)).failures;
      // a new pod: a new etcd whose emptyDir starts empty, as when Cilium's pod is rescheduled
      ok(
        mesh.kubectl("c2", [
          "-n",
          "kube-system",
          "delete",
          "pod",
          "-l",
          "app.kubernetes.io/name=clustermesh-apiserver",
        ]),
        "delete the clustermesh-apiserver pod",
      );
      await waitFor(
        `${KVSTOREMESH ? "c1's KVStoreMesh" : "the c1 agent"} to notice the new etcd`,
        async () => {
          const session = await c2Session(node);
          return session.failures > before || !session.ready;
        },
        {
          timeoutMs: 30_000,
          intervalMs: 200,
        },
      );
      await waitFor(
        "c2 ready again in the c1 agent",
        async () => (await remoteStatus(node, "c2"))?.ready && (await c2Session(node)).ready,
        {
          timeoutMs: 60_000,
          intervalMs: 200,
        },
      );
      // keep sampling after the resync: backends must not drop once it is "done" either (a count of
      // samples, not a time: under load a sample takes longer)
      await moreSamples(20);
    });
    assert.ok(samples >= 20, `sampled ${samples} times`);
    assert.deepEqual(gaps, [], "no remote backend dropped during the resync");
    await waitBackends("all backends", { c1: 2, c2: 2 });
  });

  it("keeps remote state across an agent restart until the remote has resynced", async (t) => {
    const lab = mesh.lab;
    if (!lab) return t.skip("needs the lab's process control");
    const node = clientNode("c1");
    const { samples, gaps } = await sampleWhile(async () => {
      ok(await lab.restart("agent", { node }), "restart agent");
      await waitFor("c2 ready in the restarted agent", async () => (await remoteStatus(node, "c2"))?.ready, {
        timeoutMs: 60_000,
        intervalMs: 100,
      });
    });
    assert.ok(samples > 0);
    assert.deepEqual(gaps, [], "the restarted agent served the remote backends from its first answer on");
  });

  it("withdraws an unreachable cluster's backends after the TTL, keeps its ipcache, and restores them", async (t) => {
    const lab = mesh.lab;
    if (!lab) return t.skip("needs the lab's network control");
    const port = lab.hostInterface("c2-control-plane");
    const node = clientNode("c1");
    const remoteIpcache = async () =>
      (await lab.agentStatus(node)).ipcache.filter(
        (e) => e.remoteCluster && c2Ips.includes(e.prefix.split("/")[0]),
      ).length;
    assert.equal(await remoteIpcache(), 2);
    const downAt = Date.now();
    await run(["ip", "link", "set", port, "down"]);
    try {
      await waitBackends("c2 backends withdrawn", { c1: 2, c2: 0 }, (BACKEND_TTL_S + 15) * 1000);
      const withdrawnAfter = (Date.now() - downAt) / 1000;
      assert.ok(
        withdrawnAfter >= BACKEND_TTL_S - 1,
        `withdrawn after ${withdrawnAfter} s, not before the TTL`,
      );
      assert.ok(withdrawnAfter <= BACKEND_TTL_S + 10, `withdrawn after ${withdrawnAfter} s`);
      const status = await remoteStatus(node, "c2");
      assert.equal(status?.backendsWithdrawn, true);
      // KVStoreMesh: the agent's session is to its local cache, which stays up
      assert.equal(status?.connected, KVSTOREMESH);
      if (KVSTOREMESH) assert.equal(cachedC2()?.connected, false);
      assert.equal(await remoteIpcache(), 2, "pod-to-pod state is kept");
      assert.deepEqual([...new Set(answeringClusters("c1", 10))], ["c1"], "traffic stays on live backends");
    } finally {
      await run(["ip", "link", "set", port, "up"]);
    }
    await waitBackends("c2 backends restored", { c1: 2, c2: 2 }, 60_000);
    assert.equal((await remoteStatus(node, "c2"))?.backendsWithdrawn, false);
  });

  it("rejects what a malicious remote etcd publishes, with counters, and keeps everything else", async (t) => {
    const lab = mesh.lab;
    if (!lab) return t.skip("needs the remote etcd's admin certificate");
    const admin = lab.clustermeshAdmin("c2");
    const etcd = connectEtcd({ endpoints: [admin.endpoint], tls: tlsFromFiles(admin) });
    const node = clientNode("c1");
    const c1Pod = pods("c1", "app=echo")[0];
    const c2NodeIp = lab.nodeIp("c2-worker");
    const evil: Record<string, string> = {
      // names another cluster
      "cilium/state/nodes/v1/c2/evil-node": JSON.stringify({
        Name: "evil-node",
        Cluster: "c1",
        ClusterID: 1,
      }),
      // not JSON at all
      "cilium/state/nodes/v1/c2/garbage": "{{{ not json",
      // an identity in c1's range
      "cilium/state/identities/v1/id/65600": "k8s:app=evil;k8s:io.cilium.k8s.policy.cluster=c2;",
      // an IP that does not parse
      "cilium/state/ip/v1/default/10.0.0.999":
        '{"IP":"10.0.0.999","Mask":null,"HostIP":"","ID":131072,"Key":0,"Metadata":""}',
      // well-formed, but claims a c1 pod's address (hijack attempt)
      [`cilium/state/ip/v1/default/${c1Pod.ip}`]: JSON.stringify({
        IP: c1Pod.ip,
        Mask: null,
        HostIP: c2NodeIp,
        ID: 131_100,
        Key: 0,
        Metadata: "",
      }),
      // a service entry under c2's prefix saying it is c1's
      [`cilium/state/services/v1/c2/${NS}/evil`]: JSON.stringify({
        cluster: "c1",
        namespace: NS,
        name: "evil",
        frontends: {},
        backends: {},
        labels: {},
        selector: {},
        includeExternal: true,
        shared: true,
        clusterID: 1,
      }),
      // well-formed and c2's, but one backend is outside c2's pod range and node IPs
      [`cilium/state/services/v1/c2/${NS}/stray-backend`]: JSON.stringify({
        cluster: "c2",
        namespace: NS,
        name: "stray-backend",
        frontends: {},
        backends: { "192.0.2.7": { http: { Protocol: "TCP", Port: 80 } } },
        labels: {},
        selector: {},
        includeExternal: true,
        shared: true,
        clusterID: 2,
      }),
    };
    const sum = (counts: Record<string, number> | undefined) =>
      Object.values(counts ?? {}).reduce((a, b) => a + b, 0);
    /**
     * Refusals of c2's entries by reason: the agent's, plus (KVStoreMesh) those of c1's
     * clustermesh-apiserver, which validates before caching — the agent then refuses only what
     * needs its own cluster's state (foreign-address).
     */
    const refusals = async () => {
      const agent = await remoteStatus(node, "c2");
      const cached = KVSTOREMESH ? cachedC2() : undefined;
      const merge = (a: Record<string, number> | undefined, b: Record<string, number> | undefined) => {
        const out: Record<string, number> = { ...(a ?? {}) };
        for (const [reason, count] of Object.entries(b ?? {})) out[reason] = (out[reason] ?? 0) + count;
        return out;
      };
      return {
        now: merge(agent?.rejectedNow, cached?.["rejected-now"]),
        total: merge(agent?.rejectedTotal, cached?.["rejected-total"]),
      };
    };
    const before = await refusals();
    const rejectedBefore = sum(before.total);
    // c2's own clustermesh-apiserver would delete these stray keys within milliseconds (drift
    // repair): freeze it, as a malicious remote would not run it
    const thaw = await lab.freeze("clustermesh-apiserver", "c2");
    try {
      for (const [key, value] of Object.entries(evil)) await etcd.put(key).value(value).exec();
      await waitFor(
        "c1 to count the rejections",
        async () => {
          const r = (await refusals()).now;
          return (
            (r["cluster-mismatch"] ?? 0) >= 2 &&
            (r["not-json"] ?? 0) >= 1 &&
            (r["identity-out-of-range"] ?? 0) >= 1 &&
            (r["bad-ip"] ?? 0) >= 1 &&
            (r["foreign-address"] ?? 0) >= 2
          );
        },
        { timeoutMs: 15_000, intervalMs: 200 },
      );
      const after = await lab.agentStatus(node);
      assert.equal(after.ready, true, "the agent keeps running");
      const total = sum((await refusals()).total);
      assert.ok(total >= rejectedBefore + 7, `rejected ${rejectedBefore} → ${total}`);
      const hijacked = after.ipcache.find((e) => e.prefix === `${c1Pod.ip}/32`);
      assert.ok(
        hijacked && !hijacked.tunnelEndpoint && !hijacked.remoteCluster,
        "the local pod's entry is untouched",
      );
      assert.ok(!after.ipcache.some((e) => e.prefix.startsWith("10.0.0.")));
      assert.ok(!after.clustermesh.remoteIdentities.some((i) => i.id === 65600));
      const b = await c1Backends();
      assert.equal(b.c2.length, 2, "other remote state intact");
      assert.equal(b.c1.length, 2);
    } finally {
      for (const key of Object.keys(evil))
        await etcd
          .delete()
          .key(key)
          .exec()
          .catch((error) => console.error("teardown:", error));
      thaw();
      etcd.close();
    }
    // what is refused now goes back to what it was; the totals stay
    const nowBefore = sum(before.now);
    await waitFor(
      "current rejections gone with the entries",
      async () => sum((await refusals()).now) === nowBefore,
      {
        timeoutMs: 15_000,
        intervalMs: 200,
      },
    );
    assert.ok(sum((await refusals()).total) >= rejectedBefore + 7);
  });

  it("disconnect removes everything of the remote from every agent", async () => {
    ok(
      mesh.meshctl([
        "clustermesh",
        "disconnect",
        "--context",
        mesh.context("c1"),
        "--destination-context",
        mesh.context("c2"),
      ]),
      "meshctl clustermesh disconnect",
    );
    await waitBackends("only local backends", { c1: 2, c2: 0 });
    const lab = mesh.lab;
    if (!lab) return;
    for (const [cluster, other] of [
      ["c1", "c2"],
      ["c2", "c1"],
    ] as const) {
      const otherIps = cluster === "c1" ? c2Ips : c1Ips;
      for (const node of [`${cluster}-control-plane`, `${cluster}-worker`]) {
        await waitFor(
          `${node}: nothing of ${other} left`,
          async () => {
            const status = await lab.agentStatus(node);
            return (
              status.clustermesh.remoteClusters.length === 0 &&
              status.clustermesh.remoteIdentities.length === 0 &&
              !status.ipcache.some((e) => e.remoteCluster) &&
              !status.services.some((s) => s.backends.some((b) => otherIps.includes(b.address.split(":")[0])))
            );
          },
          { timeoutMs: 20_000, intervalMs: 200 },
        );
      }
    }
    assert.deepEqual([...new Set(answeringClusters("c1", 10))], ["c1"]);
  });
});
