// The Hubble relay (lib/hubble/relay.ts): cluster c1's relay merges its node's observer, cluster
// c2's relay (over mutual TLS, which serves c2's node) and a node that is gone: flows of both
// clusters merged, the missing node named, `hubble status` and `hubble observe` against it; a count
// (--last N) means N flows overall, merged by time, with and without follow.
import assert from "node:assert/strict";
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { reconcileMaps } from "../../bpf/datapath/apply.js";
import { ConfigFlags, Proto } from "../../bpf/datapath/codecs.js";
import { Datapath, ProgramName } from "../../bpf/datapath/loader.js";
import { buildPacket, TcpFlag } from "../../bpf/datapath/packet.js";
import type { DesiredDatapathState } from "../../bpf/datapath/reconcile.js";
import { mountPrivateBpffs, type PrivateBpffs } from "../../bpf/testing.js";
import { createCa, issueServerCert } from "../../certs/authority.js";
import { HubbleClient } from "../../lib/hubble/client.js";
import { type HubbleFlow, timestampToNs } from "../../lib/hubble/flow.js";
import { HubbleRelay } from "../../lib/hubble/relay.js";
import { agentDirectoryInputs } from "./agent-directory.js";
import { FlowObserver } from "./observer.js";

const POD_C1 = "10.1.0.10";
const ID_C1 = 0x10000 | 300;
const POD_C2 = "10.2.0.10";
const ID_C2 = 0x20000 | 77;

function until<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const value = probe();
      if (value !== undefined) return resolve(value);
      if (Date.now() > deadline) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(attempt, 20);
    };
    attempt();
  });
}

const sourcePort = (flow: HubbleFlow) => flow.l4?.TCP?.source_port ?? 0;

interface Node {
  datapath: Datapath;
  observer: FlowObserver;
  socket: string;
}

describe("Hubble relay (root)", () => {
  let bpffs: PrivateBpffs;
  let dir: string;
  const nodes: Node[] = [];
  let relay: HubbleRelay;
  let relayC2: HubbleRelay;
  const ca = createCa({ commonName: "hubble-ca" });
  const serverCert = issueServerCert(ca, { dnsNames: ["c2.hubble-relay.test"], ipAddresses: ["127.0.0.1"] });
  const peerTls = () => ({
    ca: Buffer.from(ca.certPem),
    cert: Buffer.from(serverCert.certPem),
    key: Buffer.from(serverCert.keyPem),
    serverName: "c2.hubble-relay.test",
  });

  async function node(name: string, cluster: "c1" | "c2"): Promise<Node> {
    const [ownPod, ownId, otherPod, otherId, other] =
      cluster === "c1" ? [POD_C1, ID_C1, POD_C2, ID_C2, "c2"] : [POD_C2, ID_C2, POD_C1, ID_C1, "c1"];
    const desired: DesiredDatapathState = {
      services: [{ frontend: { address: "10.96.0.10", port: 80, proto: Proto.TCP }, backends: [] }],
      endpoints: [
        {
          address: ownPod,
          ifindex: 11,
          identity: ownId,
          mac: "02:aa:00:00:00:10",
          nodeMac: "02:bb:00:00:00:10",
        },
      ],
      remoteNodes: [],
      ipcache: [
        { prefix: `${otherPod}/32`, identity: otherId, tunnelEndpoint: "172.20.0.9", remoteCluster: true },
      ],
    };
    const pinRoot = `${bpffs.path}/${name}`;
    const datapath = Datapath.load({ pinRoot });
    datapath.maps.setConfig({ tunnelIfindex: 77, flags: ConfigFlags.Trace, worldIdentity: 2 });
    reconcileMaps(datapath.maps, desired);
    const socket = join(dir, `${name}.sock`);
    const observer = await FlowObserver.start({
      config: { flows: "on", socketPath: socket, bufferSize: 64 },
      pinRoot,
      nodeName: `${cluster}/${name}`,
      clusterName: cluster,
      version: "test",
      directory: () =>
        agentDirectoryInputs({
          clusterName: cluster,
          desired,
          endpoints: [],
          meshEndpoints: [],
          identities: [],
          remoteClusters: [],
          remoteIdentities: [
            { id: ownId, labels: [`k8s:io.cilium.k8s.policy.cluster=${cluster}`], cluster },
            { id: otherId, labels: [`k8s:io.cilium.k8s.policy.cluster=${other}`], cluster: other },
          ],
        }),
      onError: (error) => {
        throw error;
      },
    });
    const made = { datapath, observer, socket };
    nodes.push(made);
    return made;
  }

  // a connection's first SYN (another SYN of the same connection would be aggregated)
  const send = (target: Node, program: string, saddr: string, daddr: string, sport = 40001) =>
    target.datapath.program(program).testRun({
      data: buildPacket({ saddr, daddr, proto: Proto.TCP, sport, dport: 80, tcpFlags: TcpFlag.SYN }),
    });
  const flowsOf = async (client: HubbleClient, request: object) =>
    (await client.flows(request)).flatMap((response) => (response.flow ? [response.flow] : []));
  const at = (flow: HubbleFlow) => timestampToNs(flow.time);

  before(async () => {
    bpffs = mountPrivateBpffs("cm-flw-relay-");
    dir = mkdtempSync(join(tmpdir(), "cm-flw-relay-"));
    const c1 = await node("c1-worker", "c1");
    const c2 = await node("c2-worker", "c2");
    relayC2 = await HubbleRelay.start({
      listenAddress: "127.0.0.1:0",
      version: "test",
      tls: {
        ca: Buffer.from(ca.certPem),
        cert: Buffer.from(serverCert.certPem),
        key: Buffer.from(serverCert.keyPem),
      },
      peers: () => [{ name: "c2/c2-worker", target: `unix:${c2.socket}` }],
    });
    relay = await HubbleRelay.start({
      listenAddress: "127.0.0.1:0",
      version: "test",
      peers: () => [
        { name: "c1/c1-worker", target: `unix:${c1.socket}` },
        { name: "c2/relay", target: `127.0.0.1:${relayC2.port}`, tls: peerTls() },
        { name: "c1/c1-gone", target: `unix:${join(dir, "gone.sock")}` },
      ],
    });
    send(c1, ProgramName.tunnelIngress, POD_C2, POD_C1); // dropped on c1: from c2 to c1
    send(c2, ProgramName.fromPod, POD_C2, POD_C1); // forwarded on c2: from c2 to c1
    for (const each of nodes) each.observer.tick();
  });
  after(async () => {
    await relay?.close();
    await relayC2?.close();
    for (const each of nodes) {
      await each.observer.close();
      each.datapath.close();
    }
    bpffs?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  it("merges both nodes' flows and names the missing node", async () => {
    const client = HubbleClient.connect(`127.0.0.1:${relay.port}`);
    try {
      const responses = await client.flows({ whitelist: [{ source_cluster_name: ["c2"] }] });
      const flows = responses.flatMap((response) => (response.flow ? [response.flow] : []));
      assert.deepEqual(
        new Set(flows.map((flow) => flow.node_name)),
        new Set(["c1/c1-worker", "c2/c2-worker"]),
      );
      const missing = responses.find((response) => response.node_status);
      assert.deepEqual(missing?.node_status?.node_names, ["c1/c1-gone"]);
      assert.equal(missing?.node_status?.state_change, "NODE_UNAVAILABLE");

      const status = await client.serverStatus();
      assert.deepEqual(
        [status.num_connected_nodes?.value, status.num_unavailable_nodes?.value, status.unavailable_nodes],
        [2, 1, ["c1/c1-gone"]],
      );
      assert.equal(status.max_flows, "128");
      const listed = await client.nodes();
      assert.deepEqual(
        listed.map((entry) => [entry.name, entry.state]),
        [
          ["c1/c1-worker", "NODE_CONNECTED"],
          ["c2/relay", "NODE_CONNECTED"],
          ["c1/c1-gone", "NODE_UNAVAILABLE"],
        ],
      );
    } finally {
      client.close();
    }
  });

  it("--last N through the relay: the last N flows overall, merged by time across nodes and clusters", async () => {
    const [c1, c2] = nodes;
    // new connections on both clusters' nodes, interleaved: each node holds more than N
    for (let sport = 42001; sport <= 42004; sport++)
      if (sport % 2) send(c1, ProgramName.fromPod, POD_C1, POD_C2, sport);
      else send(c2, ProgramName.fromPod, POD_C2, POD_C1, sport);
    for (const each of nodes) each.observer.tick();
    const client = HubbleClient.connect(`127.0.0.1:${relay.port}`);
    try {
      const all = await flowsOf(client, {});
      assert.ok(all.length >= 6, `every stored flow: ${all.length}`);
      const times = all.map(at).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const last = await flowsOf(client, { number: 3 });
      assert.equal(last.length, 3, "3 flows, not 3 per node");
      assert.deepEqual(last.map(at), times.slice(-3), "the latest, oldest first");
      const first = await flowsOf(client, { number: 2, first: true });
      assert.deepEqual(first.map(at), times.slice(0, 2));
    } finally {
      client.close();
    }
  });

  it("--follow --last 1 through the relay: one stored flow overall, then new flows", async () => {
    const client = HubbleClient.connect(`127.0.0.1:${relay.port}`);
    const received: HubbleFlow[] = [];
    const stream = client.getFlows({ follow: true, number: 1 }, (response) => {
      if (response.flow) received.push(response.flow);
    });
    try {
      await until("the stored flow", () => received[0]);
      assert.ok(sourcePort(received[0]) < 43000);
      // the peers' streams are open once they have the call: open new connections until one arrives
      let sport = 43000;
      const fresh = await until("a new flow", () => {
        send(nodes[1], ProgramName.fromPod, POD_C2, POD_C1, sport++);
        nodes[1].observer.tick();
        return received.find((flow) => sourcePort(flow) >= 43000);
      });
      assert.equal(received.indexOf(fresh), 1, "one stored flow (not one per node), then the new one");
    } finally {
      stream.cancel();
      // cancelled above: the stream ends with CANCELLED, which is not a failure of the test
      await stream.done.catch(() => undefined);
      client.close();
    }
  });

  it("c2's relay requires a client certificate from our CA", async () => {
    const anonymous = HubbleClient.connect(`127.0.0.1:${relayC2.port}`, {
      ca: Buffer.from(ca.certPem),
      serverName: "c2.hubble-relay.test",
    });
    try {
      await assert.rejects(anonymous.serverStatus(2000));
    } finally {
      anonymous.close();
    }
  });

  it("the real hubble CLI against the relay: status and observe --from-cluster c2 --verdict DROPPED", async () => {
    const hubble = execFileSync(join(import.meta.dirname, "../../../test/interop/hubble-build.sh"), {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
    })
      .trim()
      .split("\n")
      .at(-1) as string;
    const server = `127.0.0.1:${relay.port}`;
    const run = async (...args: string[]) =>
      (await promisify(execFile)(hubble, args, { encoding: "utf8" })).stdout;
    const status = await run("status", "--server", server);
    assert.match(status, /Connected Nodes: 2\/3/);
    assert.match(status, /c1\/c1-gone/);
    const lines = (
      await run("observe", "--server", server, "--from-cluster", "c2", "--verdict", "DROPPED", "-o", "json")
    )
      .trim()
      .split("\n")
      .map(
        (line) =>
          JSON.parse(line) as {
            flow?: {
              node_name: string;
              source: { cluster_name: string };
              destination: { cluster_name: string };
            };
          },
      )
      .filter((line) => line.flow);
    assert.equal(lines.length, 1);
    const last = (await run("observe", "--server", server, "--last", "2", "-o", "json"))
      .trim()
      .split("\n")
      .filter((line) => JSON.parse(line).flow);
    assert.equal(last.length, 2, "--last 2: two flows, not two per node");
    assert.deepEqual(
      [lines[0].flow?.node_name, lines[0].flow?.source.cluster_name, lines[0].flow?.destination.cluster_name],
      ["c1/c1-worker", "c2", "c1"],
    );
  });
});
