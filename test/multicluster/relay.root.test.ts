/**
 * The installed Hubble relay across clusters (issue 17 item 2), on a two-cluster lab:
 *  1. before the clusters are connected, a pod of c1 reaches a TCP server on c2's node address:
 *     its node masquerades the connection (bpf/include/dp_masq.h), so the server sees c1's node;
 *  2. once connected, c1's relay (the clustermesh-apiserver pod, reached through
 *     `kubectl port-forward svc/hubble-relay`) merges c2's relay over mutual TLS: the real `hubble`
 *     CLI lists the nodes of both clusters and shows a flow from c2's pod to c1 as seen by the
 *     nodes of both clusters;
 *     `meshctl observe --context c1` (the relay by default) shows the same;
 *  3. a frozen remote relay is named in ServerStatus, and neither ServerStatus nor GetFlows waits
 *     for it past the relay's per-peer deadlines.
 * Lab only (a server in a node's namespace, freezing a container).
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { LabJournal } from "../../lab/state.js";
import { HubbleClient } from "../../lib/hubble/client.js";
import type { HubbleFlow } from "../../lib/hubble/flow.js";
import { waitFor } from "../../lib/process.js";
import type { CliResult } from "../../testing/lab-fixture.js";
import { type MeshProvider, meshProvider } from "./provider.js";

const NS = `relay-${Math.random().toString(36).slice(2, 7)}`;
const SERVER_PORT = 9977;
// answers every connection with the address it came from, then closes
const SERVER = `require("node:net").createServer((s) => s.end(s.remoteAddress + "\\n")).listen(${SERVER_PORT}, process.argv[1])`;

describe("Hubble relay across clusters, pods reaching other clusters' nodes (root: two-cluster lab)", {
  skip: process.env.MESH_E2E_PROVIDER === "kind",
}, () => {
  let mesh: MeshProvider;
  let server: ChildProcess | undefined;
  let portForward: ChildProcess | undefined;
  let relayAddress = "";
  let c1Worker = { name: "", ip: "" };
  let c2Worker = { name: "", ip: "", netns: "" };
  let nodePort = 0;
  let thaw: (() => void) | undefined;

  const ok = (result: CliResult, what: string) => {
    assert.equal(result.status, 0, `${what}: ${result.stderr}${result.stdout}`);
    return result.stdout;
  };
  const hubbleBinary = () =>
    execFileSync(join(import.meta.dirname, "../../../test/interop/hubble-build.sh"), {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    })
      .trim()
      .split("\n")
      .at(-1) as string;
  const flowsOf = (text: string): HubbleFlow[] =>
    text
      .trim()
      .split("\n")
      .filter(Boolean)
      .flatMap((line) => {
        const parsed = JSON.parse(line) as { flow?: HubbleFlow };
        return parsed.flow ? [parsed.flow] : [];
      });

  before(async () => {
    mesh = await meshProvider();
    try {
      assert.ok(mesh.lab, "needs the lab: a server in a node's namespace");
      const plan = LabJournal.open(mesh.lab.name)?.snapshot.plan;
      assert.ok(plan);
      const worker = (cluster: string) => {
        const found = plan.clusters.find((c) => c.name === cluster)?.nodes.find((n) => n.role === "worker");
        assert.ok(found, `${cluster} has a worker`);
        return found;
      };
      c1Worker = worker("c1");
      c2Worker = worker("c2");
      server = spawn(
        "nsenter",
        [`--net=/run/netns/${c2Worker.netns}`, process.execPath, "-e", SERVER, c2Worker.ip],
        {
          stdio: "ignore",
        },
      );
      const manifest = (extra: string) =>
        `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n---\n${extra}`;
      const c1 = join(mesh.dir, "relay-c1.yaml");
      writeFileSync(
        c1,
        manifest(
          `apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: ${NS}}\nspec:\n  nodeName: ${c1Worker.name}\n  containers: [{name: client, image: clustermesh/client}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: nobody, namespace: ${NS}}\nspec:\n  type: NodePort\n  selector: {app: nothing-runs-this}\n  ports: [{port: 80, targetPort: 8080}]\n`,
        ),
      );
      const c2 = join(mesh.dir, "relay-c2.yaml");
      writeFileSync(
        c2,
        manifest(
          `apiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: ${NS}}\nspec:\n  nodeName: ${c2Worker.name}\n  containers: [{name: client, image: clustermesh/client}]\n`,
        ),
      );
      ok(mesh.kubectl("c1", ["apply", "-f", c1]), "kubectl apply c1");
      ok(mesh.kubectl("c2", ["apply", "-f", c2]), "kubectl apply c2");
      for (const cluster of ["c1", "c2"] as const)
        ok(
          mesh.kubectl(cluster, ["-n", NS, "wait", "--for=condition=Ready", "pod/client", "--timeout=120s"]),
          `${cluster} client ready`,
        );
      nodePort = Number(
        ok(
          mesh.kubectl("c1", ["-n", NS, "get", "svc", "nobody", "-o", "jsonpath={.spec.ports[0].nodePort}"]),
          "nodePort",
        ),
      );
    } catch (error) {
      server?.kill();
      mesh.down();
      throw error;
    }
  });

  after(() => {
    thaw?.();
    portForward?.kill();
    server?.kill();
    mesh?.down();
  });

  it("a pod of c1 reaches a TCP server on c2's node address before any connect: masqueraded to its node", async () => {
    const answer = await waitFor(
      "the server on c2's node to answer c1's pod",
      () => {
        const result = mesh.kubectl("c1", [
          "-n",
          NS,
          "exec",
          "client",
          "--",
          "sh",
          "-c",
          `curl -s -m 2 telnet://${c2Worker.ip}:${SERVER_PORT} </dev/null`,
        ]);
        return result.status === 0 && result.stdout.trim() ? result.stdout.trim() : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500 },
    );
    assert.equal(answer.replace(/^::ffff:/, ""), c1Worker.ip, "the server sees c1's node, not the pod");
  });

  it("c1's relay merges c2's over mutual TLS: hubble status, list nodes and a flow from c2 seen by both clusters", async () => {
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
    const peers = ok(
      mesh.kubectl("c1", [
        "-n",
        "kube-system",
        "get",
        "cm",
        "hubble-relay-peers",
        "-o",
        "jsonpath={.data.c2}",
      ]),
      "c1's relay peers",
    );
    assert.match(peers, /^\d+\.\d+\.\d+\.\d+:32446$/);
    // the lab's kubelet serves kubectl's SPDY port-forward
    portForward = spawn(
      "kubectl",
      ["--context", mesh.context("c1"), "-n", "kube-system", "port-forward", "svc/hubble-relay", "0:80"],
      { env: mesh.lab?.env, stdio: ["ignore", "pipe", "pipe"] },
    );
    relayAddress = await new Promise<string>((resolve, reject) => {
      let text = "";
      portForward?.stdout?.on("data", (chunk: Buffer) => {
        text += chunk.toString();
        const port = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(text)?.[1];
        if (port) resolve(`127.0.0.1:${port}`);
      });
      portForward?.on("exit", (code) => reject(new Error(`kubectl port-forward exited ${code}`)));
      setTimeout(() => reject(new Error(`no port-forward after 20 s: ${text}`)), 20_000).unref();
    });
    const binary = hubbleBinary();
    const hubble = async (...args: string[]) =>
      (await promisify(execFile)(binary, [...args, "--server", relayAddress], { encoding: "utf8" })).stdout;

    const status = await waitFor(
      "c1's relay to reach the 4 nodes of both clusters",
      async () => {
        const text = await hubble("status");
        return /Connected Nodes: 4\/4/.test(text) ? text : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000 },
    );
    assert.match(status, /Healthcheck \(via .*\): Ok/);
    const nodes = await hubble("list", "nodes");
    for (const name of [`c1/${c1Worker.name}`, `c2/${c2Worker.name}`])
      assert.match(nodes, new RegExp(`${name}\\s+Connected`));

    const [fromC2, dropInC1] = await waitFor(
      "the flow from c2's pod to c1's NodePort, as seen in c2 and in c1",
      async () => {
        mesh.kubectl("c2", [
          "-n",
          NS,
          "exec",
          "client",
          "--",
          "sh",
          "-c",
          `curl -s -m 1 http://${c1Worker.ip}:${nodePort}/ || true`,
        ]);
        const flows = flowsOf(
          await hubble(
            "observe",
            "--from-cluster",
            "c2",
            "--to-ip",
            c1Worker.ip,
            "--to-port",
            String(nodePort),
            "--last",
            "2000",
            "-o",
            "json",
          ),
        );
        const ours = flows.filter(
          (flow) => flow.source.pod_name === "client" && flow.source.namespace === NS,
        );
        const seenInC2 = ours.find((flow) => flow.node_name === `c2/${c2Worker.name}`);
        const dropped = ours.find(
          (flow) => flow.node_name === `c1/${c1Worker.name}` && flow.verdict === "DROPPED",
        );
        return seenInC2 && dropped ? ([seenInC2, dropped] as const) : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    assert.equal(fromC2.source.cluster_name, "c2");
    assert.deepEqual([dropInC1.source.cluster_name, dropInC1.destination.cluster_name], ["c2", "c1"]);
    assert.equal(dropInC1.drop_reason_desc, "SERVICE_BACKEND_NOT_FOUND");

    // meshctl observe asks the relay by default: its mesh Service (NodePort) with the relay's certificate
    const viaMeshctl = flowsOf(
      ok(
        mesh.meshctl([
          "observe",
          "--context",
          mesh.context("c1"),
          "--from-cluster",
          "c2",
          "--to-ip",
          c1Worker.ip,
          "--last",
          "2000",
          "-o",
          "json",
        ]),
        "meshctl observe (relay)",
      ),
    );
    assert.ok(
      viaMeshctl.some(
        (flow) => flow.node_name === `c2/${c2Worker.name}` && flow.source.pod_name === "client",
      ),
      "meshctl observe sees c2's nodes through c1's relay",
    );
    assert.ok(
      viaMeshctl.some((flow) => flow.node_name === `c1/${c1Worker.name}` && flow.verdict === "DROPPED"),
    );
  });

  it("a frozen remote relay is named and stalls neither ServerStatus nor GetFlows", async () => {
    assert.ok(mesh.lab && relayAddress);
    thaw = await mesh.lab.freeze("clustermesh-apiserver", "c2");
    const client = HubbleClient.connect(relayAddress);
    try {
      const started = Date.now();
      const status = await client.serverStatus(15_000);
      assert.ok(Date.now() - started < 8_000, `ServerStatus took ${Date.now() - started} ms`);
      assert.deepEqual(status.unavailable_nodes, ["c2/relay"]);
      assert.equal(status.num_connected_nodes?.value, 2);
      const flowsStarted = Date.now();
      const responses = await client.flows({ number: "10" } as never);
      assert.ok(Date.now() - flowsStarted < 15_000, `GetFlows took ${Date.now() - flowsStarted} ms`);
      assert.ok(
        responses.some(
          (r) =>
            r.node_status?.state_change === "NODE_UNAVAILABLE" &&
            r.node_status.node_names?.includes("c2/relay"),
        ),
        "GetFlows names the missing relay",
      );
      assert.ok(
        responses.some((r) => r.flow?.node_name?.startsWith("c1/")),
        "and still serves c1's nodes",
      );
    } finally {
      client.close();
      thaw();
      thaw = undefined;
    }
  });
});
