// WireGuard between two node netns (wireguard-go where the kernel has none): pod to pod over the
// device, the underlay carries only WireGuard UDP, peers come and go, bad peers are skipped,
// counted and their prefixes dropped, a restarted manager adopts the running device.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { wireGuardInterfaceName } from "../../lib/api/encryption.js";
import { waitFor } from "../../lib/process.js";
import { ENCRYPTION_ROUTE_PROTOCOL } from "./routes.js";
import { type TestNode, TwoNodeTopology } from "./testing/two-nodes.js";
import { WIREGUARD_PORT } from "./wireguard/device.js";
import { WireGuardManager } from "./wireguard/manager.js";
import type { EncryptionNode } from "./wireguard/peers.js";
import { uapiSocketPath } from "./wireguard/uapi.js";

const topology = new TwoNodeTopology(250);
const [a, b] = topology.nodes;
const managers = new Map<TestNode, WireGuardManager>();
const MARKER = "PLAINTEXT-MARKER-5f1c";

// Node a is in cluster c1, node b in cluster c2: remote-cluster nodes are peers like local ones.
function record(node: TestNode): EncryptionNode {
  return {
    cluster: node === a ? "c1" : "c2",
    name: node.id,
    nodeIp: node.ip,
    podCidrs: [node.podCidr],
    wireguardPublicKey: managers.get(node)?.publicKey,
  };
}

function startManager(node: TestNode): Promise<WireGuardManager> {
  return WireGuardManager.start({
    local: { cluster: record(node).cluster, name: node.id },
    stateDir: join(topology.dir, `state-${node.id}`),
    ifname: wireGuardInterfaceName(node.uniquePrefix),
    netns: node.netns,
  });
}

const ping = (from: TestNode, to: TestNode) =>
  topology.podSucceeds(from, ["ping", "-c", "1", "-W", "1", "-q", to.podIp], 3_000);

describe("WireGuard between two node netns (root)", { timeout: 60_000 }, () => {
  before(async () => {
    topology.create();
    for (const node of topology.nodes) managers.set(node, await startManager(node));
    for (const node of topology.nodes) {
      const manager = managers.get(node);
      manager?.setNodes([record(a), record(b)]);
      await manager?.sync();
    }
    await topology.startEchoServer(b, 8081);
  });

  after(async () => {
    for (const manager of managers.values())
      await manager.stop().catch((error) => console.error("teardown:", error));
    await topology.destroy();
    for (const node of topology.nodes) {
      assert.ok(
        !existsSync(uapiSocketPath(wireGuardInterfaceName(node.uniquePrefix))),
        "UAPI socket left behind",
      );
    }
  });

  it("pod to pod across nodes: ping and TCP; the underlay shows only WireGuard UDP", async () => {
    const capture = await topology.startCapture(a, "wg");
    await waitFor("first ping through WireGuard", () => ping(a, b), { timeoutMs: 10_000 });
    assert.ok(ping(b, a));
    const echoed = topology.tcpEcho(a, b, 8081, `${MARKER}\n`);
    assert.equal(echoed.trim(), MARKER);
    const { lines, raw } = await capture.stop();
    // IPv6 neighbour discovery on the link itself carries no pod data.
    const ipLines = lines.filter((l) => / IP /.test(l) || (/ IP6 /.test(l) && !/ICMP6/.test(l)));
    const wgPattern = new RegExp(
      `IP (${a.ip}|${b.ip})\\.${WIREGUARD_PORT} > (${a.ip}|${b.ip})\\.${WIREGUARD_PORT}: UDP`,
    );
    assert.ok(ipLines.length >= 6, `expected WireGuard packets, got:\n${lines.join("\n")}`);
    assert.deepEqual(
      ipLines.filter((l) => !wgPattern.test(l)),
      [],
      "non-WireGuard packets on the underlay",
    );
    assert.ok(!lines.some((l) => l.includes("10.250.")), "pod addresses visible on the underlay");
    assert.ok(!raw.includes(Buffer.from(MARKER)), "plaintext payload on the underlay");

    const status = await managers.get(a)?.status();
    assert.equal(status?.peers.length, 1);
    assert.equal(status?.peers[0].node, "c2/b");
    assert.ok(status?.peers[0].lastHandshake, "handshake recorded");
    assert.ok((status?.peers[0].rxBytes ?? 0) > 0 && (status?.peers[0].txBytes ?? 0) > 0);
    assert.ok(!JSON.stringify(status).includes(managers.get(a)?.keys.privateKeyBase64() ?? "-"));
    process.stderr.write(`wireguard backend: ${status?.backend} (${status?.ifname}, pid ${status?.pid})\n`);
  });

  it("a pod reaches the other node's own address: the node's reply comes back through the tunnel", async () => {
    // b routes a's pod prefix to its WireGuard device, so its reply carries b's address as source:
    // a accepts it only because b's address is among b's allowed IPs (not routed)
    await topology.startNodeReplyServer(b, 8085, "from-node-b");
    assert.equal(topology.podToNode(a, b, 8085).trim(), "from-node-b");
  });

  it("a peer removed and re-added works again", async () => {
    const manager = managers.get(a);
    assert.ok(manager);
    manager.removeNode(record(b));
    const plan = await manager.sync();
    assert.equal(plan.removed.length, 1);
    assert.equal((await manager.status()).peers.length, 0);
    assert.equal(ping(a, b), false, "traffic must not flow without the peer");
    manager.upsertNode(record(b));
    assert.deepEqual((await manager.sync()).added, ["c2/b"]);
    await waitFor("ping after re-adding the peer", () => ping(a, b), { timeoutMs: 10_000 });
  });

  it("bad peers are skipped with a reason and counted, their prefixes blackholed, the good peer unaffected", async () => {
    const manager = managers.get(a);
    assert.ok(manager);
    const bad: EncryptionNode[] = [
      { cluster: "c2", name: "nokey", nodeIp: "172.31.250.3", podCidrs: ["10.250.3.0/24"] },
      {
        cluster: "c2",
        name: "dup",
        nodeIp: "172.31.250.4",
        podCidrs: ["10.250.4.0/24"],
        wireguardPublicKey:
          manager.keys.publicKey === record(b).wireguardPublicKey ? "" : record(b).wireguardPublicKey,
      },
      {
        cluster: "c2",
        name: "short",
        nodeIp: "172.31.250.5",
        podCidrs: ["10.250.5.0/24"],
        wireguardPublicKey: Buffer.alloc(31, 1).toString("base64"),
      },
    ];
    for (const node of bad) manager.upsertNode(node);
    const plan = await manager.sync();
    assert.deepEqual(plan.changes, []);
    assert.deepEqual(plan.rejected.map((r) => `${r.node}:${r.reason}`).sort(), [
      "c2/dup:duplicate-public-key",
      "c2/nokey:missing-public-key",
      "c2/short:invalid-public-key",
    ]);
    await manager.sync(); // a second sync does not count them again
    const status = await manager.status();
    assert.deepEqual(status.rejectedTotal, {
      "duplicate-public-key": 1,
      "missing-public-key": 1,
      "invalid-public-key": 1,
    });
    const blackholes = topology.inNode(a, [
      "ip",
      "route",
      "show",
      "type",
      "blackhole",
      "proto",
      String(ENCRYPTION_ROUTE_PROTOCOL),
    ]);
    for (const prefix of ["10.250.3.0/24", "10.250.4.0/24", "10.250.5.0/24"])
      assert.match(blackholes, new RegExp(prefix));
    assert.ok(ping(a, b), "the good peer keeps working");
    assert.equal(topology.tcpEcho(a, b, 8081, "still here\n").trim(), "still here");
    for (const node of bad) manager.removeNode(node);
    await manager.sync();
    assert.equal(topology.inNode(a, ["ip", "route", "show", "type", "blackhole"]).trim(), "");
  });

  it("a restarted manager adopts the running device and keeps its key", async () => {
    const old = managers.get(a);
    assert.ok(old);
    const adopted = await startManager(a);
    assert.equal(adopted.publicKey, old.publicKey);
    assert.equal(adopted.device.pid, old.device.pid);
    adopted.setNodes([record(a), record(b)]);
    assert.deepEqual((await adopted.sync()).changes, []);
    assert.ok(ping(a, b));
  });
});
