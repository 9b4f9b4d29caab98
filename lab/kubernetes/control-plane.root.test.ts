import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { cidrContains, parseCidr } from "../../lib/cidr.js";
import { runSync } from "../../lib/exec.js";
import { isRunning, waitFor } from "../../lib/process.js";
import type { LabResource } from "../state.js";
import { corednsBinary } from "./binaries.js";
import {
  type KubernetesControlPlane,
  startKubernetesControlPlane,
  stopKubernetesControlPlane,
} from "./control-plane.js";
import { COREDNS_USER, corednsManifest, corefile } from "./coredns.js";

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const POD_SUBNET = "10.244.0.0/16";
const SERVICE_SUBNET = "10.96.0.0/16";
/** A cold build of the control plane takes many minutes on 2 shared cores. */
const BUILD_AND_START_TIMEOUT_MS = 90 * 60_000;

/** A free 172.30.<n>.0/24 for the veth between the root namespace and the scratch node. */
function freeSubnetPrefix(): string {
  for (let attempt = 0; attempt < 50; attempt++) {
    const prefix = `172.30.${100 + (randomBytes(1)[0] % 150)}`;
    const used =
      runSync(["ip", "-4", "route", "show", "root", `${prefix}.0/24`]) +
      runSync(["ip", "-4", "-o", "addr", "show", "to", `${prefix}.0/24`]);
    if (used.trim() === "") return prefix;
  }
  throw new Error("no free 172.30.x.0/24 subnet for the test's node link");
}

describe("real Kubernetes control plane v1.33.13 in a node namespace (root; builds the binaries on first use)", () => {
  const id = randomBytes(3).toString("hex");
  const netns = `gbk${id}-cp`;
  const hostVeth = `gbk${id}h`;
  const dir = mkdtempSync(join(tmpdir(), `gbk${id}-`));
  const records: LabResource[] = [];
  const cluster = "c1";
  let nodeIp = "";
  let cp: KubernetesControlPlane;

  const kubectlAs = (kubeconfig: string, ...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(
        "kubectl",
        ["--kubeconfig", kubeconfig, ...args],
        { timeout: 60_000 },
        (error, stdout, stderr) => {
          resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
        },
      );
    });
  const kubectl = (...args: string[]) => kubectlAs(cp.kubeconfigs.admin, ...args);
  const ok = async (...args: string[]) => {
    const run = await kubectl(...args);
    assert.equal(run.code, 0, `kubectl ${args.join(" ")} failed: ${run.stderr}`);
    return run.stdout;
  };
  const getJson = async (...args: string[]) => JSON.parse(await ok("get", ...args, "-o", "json"));

  before(
    async () => {
      const prefix = freeSubnetPrefix();
      nodeIp = `${prefix}.2`;
      runSync(["ip", "netns", "add", netns]);
      runSync(["ip", "link", "set", "lo", "up"], { netns });
      runSync(["ip", "link", "add", hostVeth, "type", "veth", "peer", "name", "eth0", "netns", netns]);
      runSync(["ip", "addr", "add", `${prefix}.1/24`, "dev", hostVeth]);
      runSync(["ip", "link", "set", hostVeth, "up"]);
      runSync(["ip", "addr", "add", `${nodeIp}/24`, "dev", "eth0"], { netns });
      runSync(["ip", "link", "set", "eth0", "up"], { netns });
      runSync(["ip", "route", "add", "default", "via", `${prefix}.1`], { netns });
      cp = await startKubernetesControlPlane({
        journal: { path: (...parts: string[]) => join(dir, ...parts), record: (r) => records.push(r) },
        clusterName: cluster,
        node: { name: `${cluster}-control-plane`, ip: nodeIp, netns },
        nodes: [
          { name: `${cluster}-control-plane`, ip: nodeIp },
          { name: `${cluster}-worker`, ip: `${prefix}.3` },
        ],
        podSubnets: [POD_SUBNET],
        serviceSubnets: [SERVICE_SUBNET],
        etcdDataDir: join("/dev/shm", `gbk${id}-etcd`),
      });
    },
    { timeout: BUILD_AND_START_TIMEOUT_MS },
  );

  after(async () => {
    if (cp) await stopKubernetesControlPlane(cp.components);
    for (const record of records) {
      if (record.kind === "process")
        assert.ok(!isRunning(record), `${record.role} (PID ${record.pid}) left running`);
    }
    runSync(["ip", "netns", "del", netns]); // takes the veth pair with it
    rmSync(join("/dev/shm", `gbk${id}-etcd`), { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it("every component was recorded before it was waited on, and all of them run", () => {
    assert.deepEqual(
      records.map((r) => (r.kind === "process" ? r.role : r.kind)),
      ["kube-etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"],
    );
    for (const component of cp.components) assert.ok(isRunning(component.ref), component.role);
  });

  it("kubectl version reports the pinned server release", async () => {
    const version = JSON.parse(await ok("version", "-o", "json"));
    assert.equal(version.serverVersion.gitVersion, "v1.33.13");
    assert.equal(version.serverVersion.major, "1");
    assert.equal(version.serverVersion.minor, "33");
    assert.equal(version.serverVersion.gitTreeState, "clean");
  });

  it("RBAC is on: a ServiceAccount's token authenticates but may not list secrets", async () => {
    await ok("create", "serviceaccount", "probe", "-n", "default");
    const token = (await ok("create", "token", "probe", "-n", "default")).trim();
    const empty = join(dir, "empty-kubeconfig");
    writeFileSync(empty, "");
    const asProbe = (...args: string[]) =>
      kubectlAs(
        empty,
        `--server=${cp.apiServerUrl}`,
        `--certificate-authority=${cp.pki.ca.cert}`,
        `--token=${token}`,
        ...args,
      );
    const whoami = await asProbe("auth", "whoami", "-o", "json");
    assert.equal(whoami.code, 0, whoami.stderr);
    assert.equal(JSON.parse(whoami.stdout).status.userInfo.username, "system:serviceaccount:default:probe");
    const secrets = await asProbe("get", "secrets", "-n", "default");
    assert.notEqual(secrets.code, 0);
    assert.match(
      secrets.stderr,
      /forbidden: User "system:serviceaccount:default:probe" cannot list resource "secrets"/,
    );
  });

  it("a Node created with its kubelet client certificate gets a podCIDR from the podSubnet (node IPAM)", async () => {
    const nodeName = `${cluster}-worker`;
    const nodeFile = join(dir, "node.json");
    writeFileSync(
      nodeFile,
      JSON.stringify({
        apiVersion: "v1",
        kind: "Node",
        metadata: { name: nodeName, labels: { "kubernetes.io/os": "linux" } },
      }),
    );
    const created = await kubectlAs(cp.kubeconfigs[`kubelet-${nodeName}`], "create", "-f", nodeFile);
    assert.equal(created.code, 0, created.stderr);
    // The Node authorizer and NodeRestriction: a node may not create another node.
    const other = join(dir, "other-node.json");
    writeFileSync(
      other,
      JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: "someone-else" } }),
    );
    const refused = await kubectlAs(cp.kubeconfigs[`kubelet-${nodeName}`], "create", "-f", other);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /forbidden/);
    const podCidr = await waitFor(
      `node ${nodeName} to get a podCIDR`,
      async () => (await getJson("node", nodeName)).spec.podCIDR as string | undefined,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const [network, length] = podCidr.split("/");
    assert.equal(length, "24");
    assert.ok(cidrContains(parseCidr(POD_SUBNET), network), `${podCidr} is inside ${POD_SUBNET}`);
  });

  it("a Deployment gets a ReplicaSet and pods the scheduler looks at; deleting it collects them (GC)", async () => {
    await ok(
      "create",
      "deployment",
      "web",
      "--image=registry.k8s.io/pause:3.10",
      "--replicas=2",
      "-n",
      "default",
    );
    const pods = await waitFor(
      "the Deployment's ReplicaSet and its 2 pods",
      async () => {
        const sets = (await getJson("replicasets", "-n", "default", "-l", "app=web")).items;
        if (sets.length !== 1 || sets[0].metadata.ownerReferences?.[0]?.name !== "web") return false;
        const items = (await getJson("pods", "-n", "default", "-l", "app=web")).items;
        return items.length === 2 &&
          items.every(
            (p: { metadata: { ownerReferences?: { name: string }[] } }) =>
              p.metadata.ownerReferences?.[0]?.name === sets[0].metadata.name,
          )
          ? items
          : false;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    // No kubelet runs: pods stay Pending, but the scheduler has tried them (PodScheduled=False).
    await waitFor(
      "the scheduler to mark the pods unschedulable",
      async () => {
        const items = (await getJson("pods", "-n", "default", "-l", "app=web")).items;
        return items.every(
          (p: { status: { phase: string; conditions?: { type: string; status: string }[] } }) =>
            p.status.phase === "Pending" &&
            p.status.conditions?.some((c) => c.type === "PodScheduled" && c.status === "False"),
        );
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    assert.equal(pods.length, 2);
    await ok("delete", "deployment", "web", "-n", "default", "--wait=false");
    await waitFor(
      "the garbage collector to remove the ReplicaSet and pods",
      async () =>
        (await getJson("replicasets", "-n", "default", "-l", "app=web")).items.length === 0 &&
        (await getJson("pods", "-n", "default", "-l", "app=web")).items.length === 0,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
  });

  it("the kubernetes Service and its EndpointSlice point at the API server's node address", async () => {
    const service = await getJson("service", "kubernetes", "-n", "default");
    assert.equal(service.spec.clusterIP, "10.96.0.1");
    const slices = await waitFor(
      "the kubernetes EndpointSlice",
      async () => {
        const items = (
          await getJson("endpointslices", "-n", "default", "-l", "kubernetes.io/service-name=kubernetes")
        ).items;
        return items.length > 0 ? items : false;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    assert.deepEqual(
      slices[0].endpoints.flatMap((e: { addresses: string[] }) => e.addresses),
      [nodeIp],
    );
    assert.equal(slices[0].ports[0].port, 6443);
  });

  it("the CoreDNS add-on applies: kube-dns at .10, a ReplicaSet, and CoreDNS's identity may read what it serves only", {
    timeout: BUILD_AND_START_TIMEOUT_MS,
  }, async () => {
    const manifest = corednsManifest({
      serviceSubnet: SERVICE_SUBNET,
      corefileText: corefile({ upstream: false }),
      // Built on first use, like the control plane (a cold build takes minutes).
      binary: await corednsBinary(),
    });
    const file = join(dir, "coredns.yaml");
    writeFileSync(file, manifest);
    await ok("apply", "-f", file);
    assert.equal((await getJson("service", "kube-dns", "-n", "kube-system")).spec.clusterIP, "10.96.0.10");
    await waitFor(
      "the coredns ReplicaSet",
      async () =>
        (await getJson("replicasets", "-n", "kube-system", "-l", "k8s-app=kube-dns")).items.length === 1,
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const asCoredns = (...args: string[]) => kubectl(`--as=${COREDNS_USER}`, ...args);
    const slices = await asCoredns("get", "endpointslices", "-A");
    assert.equal(slices.code, 0, slices.stderr);
    const secrets = await asCoredns("get", "secrets", "-n", "kube-system");
    assert.notEqual(secrets.code, 0);
    assert.match(secrets.stderr, /forbidden/);
  });
});
