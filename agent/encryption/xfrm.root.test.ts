// Kernel XFRM on this machine: the ESP probe classifies the kernel, and the model's policies are
// installed for real in two node netns. This kernel has no ESP, so no state can exist: pod traffic
// that must be encrypted is blocked (no plaintext on the underlay), by the tunnel policies
// (XfrmOutNoStates) and by the catch-all block policy (XfrmOutPolBlock); removing them restores it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { KernelXfrm, listXfrmPolicies, probeKernelEsp } from "./ipsec/kernel.js";
import { parseIpsecKeys } from "./ipsec/keys.js";
import { buildXfrmModel, type XfrmNode } from "./ipsec/xfrm.js";
import { type TestNode, TwoNodeTopology } from "./testing/two-nodes.js";

const topology = new TwoNodeTopology(248);
const [a, b] = topology.nodes;
const backends = new Map<TestNode, KernelXfrm>();
const boot = (c: string) => `${c.repeat(8)}-${c.repeat(4)}-${c.repeat(4)}-${c.repeat(4)}-${c.repeat(12)}`;
const xfrmNode = (node: TestNode): XfrmNode => ({
  node: `c1/${node.id}`,
  ip: node.ip,
  podCidrs: [node.podCidr],
  bootId: boot(node.id),
});

function xfrmStat(node: TestNode): Record<string, number> {
  const text = topology.inNode(node, ["cat", "/proc/net/xfrm_stat"]);
  return Object.fromEntries(
    text
      .trim()
      .split("\n")
      .map((line) => {
        const [name, value] = line.trim().split(/\s+/);
        return [name, Number(value)];
      }),
  );
}

const ping = (from: TestNode, to: string) =>
  topology.podSucceeds(from, ["ping", "-c", "1", "-W", "1", "-q", to], 3_000);

describe("kernel XFRM policies installed for real (root)", { timeout: 60_000 }, () => {
  before(() => {
    topology.create();
    // Plain routes between the pod CIDRs, as a datapath without encryption would have them.
    topology.inNode(a, ["ip", "route", "add", b.podCidr, "via", b.ip]);
    topology.inNode(a, ["ip", "route", "add", "10.248.9.0/24", "via", b.ip]);
    topology.inNode(b, ["ip", "route", "add", a.podCidr, "via", a.ip]);
  });

  after(async () => {
    for (const backend of backends.values()) await backend.stop().catch(() => undefined);
    await topology.destroy();
  });

  it("the ESP probe picks the backend and says why", async () => {
    const probe = await probeKernelEsp();
    process.stderr.write(`ipsec probe: ${probe.backend} (${probe.detail})\n`);
    if (!probe.kernelEsp) {
      assert.equal(probe.backend, "userspace-libipsec");
      assert.match(probe.detail, /kernel has no ESP|ESP probe failed/);
    } else {
      assert.equal(probe.backend, "kernel-xfrm");
    }
  });

  it("pod traffic flows in plain text before any policy (baseline)", () => {
    assert.ok(ping(a, b.podIp));
  });

  it("policies install; without states nothing leaves in plain text", async () => {
    const keys = parseIpsecKeys(`3+ rfc4106(gcm(aes)) ${"0102030405060708090a0b0c0d0e0f1011121314"} 128`);
    for (const node of topology.nodes) {
      const model = buildXfrmModel({
        local: xfrmNode(node),
        remotes: [xfrmNode(topology.other(node))],
        keys,
        encryptedPrefixes: ["10.248.0.0/16"],
      });
      const backend = new KernelXfrm({ netns: node.netns, policiesOnly: true });
      backends.set(node, backend);
      const { applied } = await backend.sync(model);
      assert.equal(applied, 4); // out + fwd + in tunnel policies, one block
    }
    const policies = await listXfrmPolicies(a.netns);
    assert.match(policies, new RegExp(`src ${a.podCidr} dst ${b.podCidr}\\s+dir out priority 100`));
    assert.match(policies, new RegExp(`tmpl src ${a.ip} dst ${b.ip}\\s+proto esp reqid 1 mode tunnel`));
    assert.match(policies, new RegExp(`src ${b.podCidr} dst ${a.podCidr}\\s+dir fwd priority 100`));
    assert.match(
      policies,
      new RegExp(`src ${a.podCidr} dst 10.248.0.0/16\\s+dir out action block priority 4000`),
    );

    const before = xfrmStat(a);
    const capture = await topology.startCapture(a, "xfrm");
    assert.equal(ping(a, b.podIp), false, "a pod reached a remote pod with no ESP state");
    assert.equal(ping(a, "10.248.9.1"), false, "traffic under the catch-all was not blocked");
    const { lines } = await capture.stop();
    const afterStat = xfrmStat(a);
    assert.ok(
      afterStat.XfrmOutNoStates > before.XfrmOutNoStates,
      "tunnel policy without state did not count",
    );
    assert.ok(afterStat.XfrmOutPolBlock > before.XfrmOutPolBlock, "block policy did not count");
    assert.deepEqual(
      lines.filter((l) => l.includes("10.248.")),
      [],
      "plaintext pod packets on the underlay",
    );
  });

  it("removing the policies restores plain connectivity (the block was theirs)", async () => {
    for (const backend of backends.values()) await backend.stop();
    assert.equal((await listXfrmPolicies(a.netns)).trim(), "");
    assert.ok(ping(a, b.podIp));
  });
});
