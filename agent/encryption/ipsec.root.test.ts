// IPsec with strongSwan's userspace ESP (kernel-libipsec) between two node netns, as chosen on
// kernels without ESP: pod-to-pod TCP over IKEv2/PSK-derived SAs, the underlay carries only
// UDP-encapsulated ESP (and IKE), SA counts read back, and a key rotation (new SPI → new PSK,
// make-before-break reauthentication) under a steady request loop loses no request.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { ProcessRef } from "../../lib/process.js";
import { waitFor } from "../../lib/process.js";
import { parseIpsecKeys } from "./ipsec/keys.js";
import { StrongSwanIpsec } from "./ipsec/strongswan.js";
import type { XfrmNode } from "./ipsec/xfrm.js";
import { type TestNode, TwoNodeTopology } from "./testing/two-nodes.js";

const topology = new TwoNodeTopology(247);
const [a, b] = topology.nodes;
const instances = new Map<TestNode, StrongSwanIpsec>();
const MARKER = "PLAINTEXT-MARKER-9e7d";
const KEY3 = `3+ rfc4106(gcm(aes)) ${"0102030405060708090a0b0c0d0e0f1011121314"} 128`;
const KEY4 = `4+ rfc4106(gcm(aes)) ${"a1b2c3d4".repeat(5)} 128`;
const boot = (c: string) => `${c.repeat(8)}-${c.repeat(4)}-${c.repeat(4)}-${c.repeat(4)}-${c.repeat(12)}`;
const xfrmNode = (node: TestNode): XfrmNode => ({
  node: `${node === a ? "c1" : "c2"}/${node.id}`,
  ip: node.ip,
  podCidrs: [node.podCidr],
  bootId: boot(node.id),
});
const requestLoop = join(fileURLToPath(new URL(".", import.meta.url)), "../testing/request-loop.js");

function instance(node: TestNode): StrongSwanIpsec {
  const found = instances.get(node);
  assert.ok(found);
  return found;
}

async function syncBoth(keys: string): Promise<void> {
  // Responder (higher IP) first, so the initiator's (re)authentication finds the same PSK there.
  await instance(b).sync([xfrmNode(a)], parseIpsecKeys(keys));
  await instance(a).sync([xfrmNode(b)], parseIpsecKeys(keys));
}

describe("IPsec userspace ESP (strongSwan kernel-libipsec) between two node netns (root)", {
  timeout: 90_000,
}, () => {
  before(async () => {
    topology.create();
    for (const node of topology.nodes) {
      instances.set(
        node,
        await StrongSwanIpsec.start({
          dir: join(topology.dir, `ipsec-${node.id}`),
          netns: node.netns,
          local: xfrmNode(node),
        }),
      );
    }
    await topology.startEchoServer(b, 8081);
    // for the request loop: one answer per connection on 8083, its long-lived echo connection on 8084
    await topology.startReplyServer(b, 8083, "ok");
    await topology.startEchoServer(b, 8084);
  });

  after(async () => {
    if (process.env.ENCRYPTION_TEST_LOGS)
      for (const i of instances.values()) process.stderr.write(`${i.logTail(80)}\n`);
    for (const i of instances.values()) await i.stop().catch((error) => console.error("teardown:", error));
    await topology.destroy();
  });

  it("establishes one IKE and one CHILD SA per node pair; pod TCP crosses as UDP-encapsulated ESP only", async () => {
    await syncBoth(KEY3);
    for (const node of topology.nodes) {
      const counts = await waitFor(`SAs on ${node.id}`, async () => {
        const c = await instance(node).saCounts();
        return c.ike === 1 && c.child === 1 ? c : undefined;
      });
      assert.deepEqual(Object.keys(counts.byConnection), [node === a ? "n-c2-b" : "n-c1-a"]);
    }
    const capture = await topology.startCapture(a, "esp");
    assert.equal(topology.tcpEcho(a, b, 8081, `${MARKER}\n`).trim(), MARKER);
    const { lines, raw } = await capture.stop();
    const ip = lines.filter((l) => / IP /.test(l) || (/ IP6 /.test(l) && !/ICMP6/.test(l)));
    const esp = ip.filter((l) =>
      /\.4500 > .*\.4500: UDP-encap: ESP\(spi=0x[0-9a-f]+,seq=0x[0-9a-f]+\)/.test(l),
    );
    const ike = ip.filter((l) => /\.(500|4500) > .*\.(500|4500): (isakmp|NONESP-encap)/.test(l));
    assert.ok(esp.length >= 6, `expected ESP-in-UDP packets, got:\n${lines.join("\n")}`);
    assert.deepEqual(
      ip.filter((l) => !esp.includes(l) && !ike.includes(l)),
      [],
      "other packets on the underlay",
    );
    assert.ok(!lines.some((l) => l.includes("10.247.")), "pod addresses visible on the underlay");
    assert.ok(!raw.includes(Buffer.from(MARKER)), "plaintext payload on the underlay");
  });

  it("a pod reaches the other node's own address: the node's reply comes back through the tunnel", async () => {
    // b's reply to a's pod is routed to ipsec0 with b's address as source (as the API server's to
    // pods of other nodes): the CHILD_SA's selectors must hold the node addresses, not only pods
    await topology.startNodeReplyServer(b, 8085, "from-node-b");
    assert.equal(topology.podToNode(a, b, 8085).trim(), "from-node-b");
  });

  it("key rotation 3 → 4 (new PSK, make-before-break reauth) under a request loop loses no request", async () => {
    const spisBefore = (await instance(a).saCounts()).byConnection["n-c2-b"].spis;
    const loop: ProcessRef = topology.start(
      a.podNetns,
      [process.execPath, requestLoop, b.podIp, "8083", "20"],
      "request-loop",
    );
    const logFile = join(topology.dir, "request-loop.log");
    await new Promise((resolve) => setTimeout(resolve, 1000)); // load on the old SAs (not a sync point)
    await syncBoth(`${KEY3}\n${KEY4}`);
    const rotated = await waitFor(
      "CHILD SA replaced after reauthentication",
      async () => {
        const counts = await instance(a).saCounts();
        const connection = counts.byConnection["n-c2-b"];
        return counts.ike === 1 && counts.child === 1 && !connection.spis.some((s) => spisBefore.includes(s))
          ? connection
          : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    await new Promise((resolve) => setTimeout(resolve, 1000)); // and on the new SAs after
    await topology.stop(loop);
    const result = JSON.parse(readFileSync(logFile, "utf8").trim().split("\n").at(-1) ?? "{}") as {
      ok: number;
      failed: number;
      errors: string[];
      longLived: string;
    };
    process.stderr.write(
      `rotation: ${JSON.stringify(result)}; SPIs ${spisBefore.join(",")} → ${rotated.spis.join(",")}\n`,
    );
    assert.equal(result.failed, 0, `requests lost during rotation: ${result.errors.join("; ")}`);
    assert.ok(result.ok >= 10, `too few requests: ${result.ok}`);
    assert.equal(result.longLived, "ok");
  });
});
