/**
 * Flows across clusters (issue 17, items 1–2), on a two-cluster lab: a pod of c2 connects to a
 * NodePort of c1 whose Service has no backend. c1's node drops the SYN (SERVICE_BACKEND_NOT_FOUND)
 * and reports it with the client named as c2's pod and the destination as c1's node. It must appear
 * in `meshctl observe --from-cluster c2 --verdict DROPPED`, in the real `hubble observe` against
 * the node's observer, and through a relay over every node, which `hubble status` reads.
 * Lab only (the agents' observer sockets).
 */
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { agentSocketPath } from "../../lab/agent-socket.js";
import { LabJournal } from "../../lab/state.js";
import type { HubbleFlow } from "../../lib/hubble/flow.js";
import { HubbleRelay } from "../../lib/hubble/relay.js";
import { waitFor } from "../../lib/process.js";
import type { CliResult } from "../../testing/lab-fixture.js";
import { type MeshProvider, meshProvider } from "./provider.js";

const NS = `flows-${Math.random().toString(36).slice(2, 7)}`;

interface Line {
  flow?: HubbleFlow;
}

describe("cross-cluster flows in meshctl observe and hubble (root: two-cluster lab)", {
  skip: process.env.MESH_E2E_PROVIDER === "kind",
}, () => {
  let mesh: MeshProvider;
  let relay: HubbleRelay | undefined;
  let nodePort = 0;
  let targetNode = "";
  let targetIp = "";
  const sockets: { node: string; socket: string }[] = [];

  const ok = (result: CliResult, what: string) => {
    assert.equal(result.status, 0, `${what}: ${result.stderr}${result.stdout}`);
    return result.stdout;
  };
  const hubble = () =>
    execFileSync(join(import.meta.dirname, "../../../test/interop/hubble-build.sh"), {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    })
      .trim()
      .split("\n")
      .at(-1) as string;
  const jsonLines = (text: string): HubbleFlow[] =>
    text
      .trim()
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Line)
      .flatMap((line) => (line.flow ? [line.flow] : []));
  const isOurDrop = (flow: HubbleFlow) =>
    flow.verdict === "DROPPED" &&
    flow.l4?.TCP?.destination_port === nodePort &&
    flow.IP?.destination === targetIp;

  before(async () => {
    mesh = await meshProvider();
    try {
      assert.ok(mesh.lab, "needs the lab: the agents' observer sockets");
      const c1 = join(mesh.dir, "flows-c1.yaml");
      writeFileSync(
        c1,
        `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: nobody, namespace: ${NS}}\nspec:\n  type: NodePort\n  selector: {app: nothing-runs-this}\n  ports: [{port: 80, targetPort: 8080}]\n`,
      );
      const c2 = join(mesh.dir, "flows-c2.yaml");
      writeFileSync(
        c2,
        `apiVersion: v1\nkind: Namespace\nmetadata: {name: ${NS}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: client, namespace: ${NS}, labels: {app: client}}\nspec:\n  containers: [{name: client, image: clustermesh/client}]\n`,
      );
      ok(mesh.kubectl("c1", ["apply", "-f", c1]), "kubectl apply c1");
      ok(mesh.kubectl("c2", ["apply", "-f", c2]), "kubectl apply c2");
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
      nodePort = Number(
        ok(
          mesh.kubectl("c1", ["-n", NS, "get", "svc", "nobody", "-o", "jsonpath={.spec.ports[0].nodePort}"]),
          "nodePort",
        ),
      );
      ok(
        mesh.kubectl("c2", ["-n", NS, "wait", "--for=condition=Ready", "pod/client", "--timeout=120s"]),
        "client ready",
      );
      const journal = LabJournal.open(mesh.lab.name);
      assert.ok(journal);
      const plan = journal.snapshot.plan;
      const worker = plan.clusters.find((c) => c.name === "c1")?.nodes.find((n) => n.role === "worker");
      assert.ok(worker);
      targetNode = worker.name;
      targetIp = worker.ip;
      for (const node of plan.clusters.flatMap((c) => c.nodes))
        sockets.push({
          node: node.name,
          socket: join(join(agentSocketPath(mesh.lab.name, node.name), ".."), "hubble.sock"),
        });
    } catch (error) {
      mesh.down();
      throw error;
    }
  });

  after(async () => {
    await relay?.close();
    mesh?.down();
  });

  it("the drop appears in meshctl observe --from-cluster c2 --verdict DROPPED with both clusters named", async () => {
    const flow = await waitFor(
      "c1's node to report the dropped SYN from c2's pod",
      () => {
        // the client's identity reaches c1 through the mesh: send until c1 names it
        mesh.kubectl("c2", [
          "-n",
          NS,
          "exec",
          "client",
          "--",
          "sh",
          "-c",
          `curl -s -m 1 http://${targetIp}:${nodePort}/ || true`,
        ]);
        const result = mesh.meshctl([
          "observe",
          "--name",
          mesh.lab?.name ?? "",
          "--from-cluster",
          "c2",
          "--verdict",
          "DROPPED",
          "--last",
          "50",
          "-o",
          "json",
        ]);
        return jsonLines(result.stdout).find((each) => isOurDrop(each) && each.source.pod_name === "client");
      },
      { timeoutMs: 90_000, intervalMs: 1000 },
    );
    assert.equal(flow.drop_reason_desc, "SERVICE_BACKEND_NOT_FOUND");
    assert.deepEqual([flow.source.cluster_name, flow.source.namespace], ["c2", NS]);
    assert.equal(flow.destination.cluster_name, "c1");
    assert.equal(flow.node_name, `c1/${targetNode}`);
    const text = ok(
      mesh.meshctl([
        "observe",
        "--name",
        mesh.lab?.name ?? "",
        "--node",
        targetNode,
        "--from-cluster",
        "c2",
        "--verdict",
        "DROPPED",
      ]),
      "meshctl observe (text)",
    );
    assert.match(
      text,
      new RegExp(
        `c2/${NS}/client:\\d+ \\(ID:\\d+\\) -> c1/${targetIp.replaceAll(".", "\\.")}:${nodePort} \\(host\\) DROPPED \\(SERVICE_BACKEND_NOT_FOUND\\)`,
      ),
    );
  });

  it("the real hubble CLI sees it on the node's observer and through a relay; hubble status via the relay", async () => {
    const binary = hubble();
    const run = async (...args: string[]) =>
      (await promisify(execFile)(binary, args, { encoding: "utf8" })).stdout;
    const target = sockets.find((entry) => entry.node === targetNode);
    assert.ok(target);
    const direct = jsonLines(
      await run(
        "observe",
        "--server",
        `unix://${target.socket}`,
        "--from-cluster",
        "c2",
        "--verdict",
        "DROPPED",
        "--last",
        "100",
        "-o",
        "json",
      ),
    );
    assert.ok(direct.some(isOurDrop), "on the node's own observer");

    relay = await HubbleRelay.start({
      listenAddress: "127.0.0.1:0",
      version: "test",
      peers: () => sockets.map(({ node, socket }) => ({ name: node, target: `unix:${socket}` })),
    });
    const server = `127.0.0.1:${relay.port}`;
    const relayed = jsonLines(
      await run(
        "observe",
        "--server",
        server,
        "--from-cluster",
        "c2",
        "--verdict",
        "DROPPED",
        "--last",
        "100",
        "-o",
        "json",
      ),
    );
    const drop = relayed.find(isOurDrop);
    assert.ok(drop, "through the relay");
    assert.deepEqual([drop.source.cluster_name, drop.destination.cluster_name], ["c2", "c1"]);
    const status = await run("status", "--server", server);
    assert.match(status, new RegExp(`Connected Nodes: ${sockets.length}/${sockets.length}`));
  });
});
