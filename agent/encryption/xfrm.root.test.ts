// Kernel XFRM on this machine: the ESP probe classifies the kernel, and the kernel backend
// (KernelXfrmIpsec: policies, states where the kernel has ESP, routes) runs for real in two node
// netns. This kernel has no ESP, so the backend runs policies-only: pod traffic that must be
// encrypted is dropped by the tunnel policies (XfrmOutNoStates) and the catch-all block
// (XfrmOutPolBlock) — never sent plain, not even an ARP for a pod address; the installed objects
// survive an agent stop, a new instance adopts them, and remove() takes every one away.
import assert from "node:assert/strict";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { run } from "../../lib/exec.js";
import { KernelXfrm, listXfrmPolicies, probeKernelEsp } from "./ipsec/kernel.js";
import { parseIpsecKeys } from "./ipsec/keys.js";
import type { XfrmNode } from "./ipsec/xfrm.js";
import { KernelXfrmIpsec, XFRM_MODEL_FILE } from "./ipsec/xfrm-backend.js";
import { ENCRYPTION_ROUTE_PROTOCOL } from "./routes.js";
import { type TestNode, TwoNodeTopology, UNDERLAY_DEVICE } from "./testing/two-nodes.js";

const KEY_HEX = "0102030405060708090a0b0c0d0e0f1011121314";
const KEYS = parseIpsecKeys(`3+ rfc4106(gcm(aes)) ${KEY_HEX} 128`);
const topology = new TwoNodeTopology(248);
const [a, b] = topology.nodes;
const backends = new Map<TestNode, KernelXfrmIpsec>();
const boot = (c: string) => `${c.repeat(8)}-${c.repeat(4)}-${c.repeat(4)}-${c.repeat(4)}-${c.repeat(12)}`;
const xfrmNode = (node: TestNode): XfrmNode => ({
  node: `c1/${node.id}`,
  ip: node.ip,
  podCidrs: [node.podCidr],
  bootId: boot(node.id),
});
/** A node whose address the model refuses: its prefixes must be dropped, not routed. */
const BROKEN: XfrmNode = {
  node: "c2/broken",
  ip: "not-an-ip",
  podCidrs: ["10.248.7.0/24"],
  bootId: boot("z"),
};
const DROPPED = "10.248.9.0/24";
const stateDir = (node: TestNode) => join(topology.dir, `xfrm-${node.id}`);

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

const routes = (node: TestNode) =>
  topology.inNode(node, ["ip", "route", "show", "proto", String(ENCRYPTION_ROUTE_PROTOCOL)]);
const ping = (from: TestNode, to: string) =>
  topology.podSucceeds(from, ["ping", "-c", "1", "-W", "1", "-q", to], 3_000);

describe("kernel XFRM backend for real (root)", { timeout: 60_000 }, () => {
  let kernelEsp = false;

  before(() => topology.create());

  after(async () => {
    for (const backend of backends.values())
      await backend.remove().catch((error) => console.error("teardown:", error));
    await topology.destroy();
  });

  it("the ESP probe picks the backend and says why", async () => {
    const probe = await probeKernelEsp();
    kernelEsp = probe.kernelEsp;
    process.stderr.write(`ipsec probe: ${probe.backend} (${probe.detail})\n`);
    if (!probe.kernelEsp) {
      assert.equal(probe.backend, "userspace-libipsec");
      assert.match(probe.detail, /kernel has no ESP|ESP probe failed/);
    } else {
      assert.equal(probe.backend, "kernel-xfrm");
    }
  });

  it("routes and policies install; without states nothing leaves in plain text", async (t) => {
    if (kernelEsp) return t.skip("this kernel has ESP: the lab test covers the encrypted path");
    for (const node of topology.nodes) {
      const backend = new KernelXfrmIpsec({
        local: xfrmNode(node),
        underlayDevice: UNDERLAY_DEVICE,
        dir: stateDir(node),
        netns: node.netns,
        policiesOnly: true,
      });
      backends.set(node, backend);
      const peers = node === a ? [xfrmNode(b), BROKEN] : [xfrmNode(a)];
      await backend.sync(peers, KEYS, { dropPrefixes: [DROPPED] });
    }
    const policies = await listXfrmPolicies(a.netns);
    assert.match(policies, new RegExp(`src ${a.podCidr} dst ${b.podCidr}\\s+dir out priority 100`));
    assert.match(policies, new RegExp(`tmpl src ${a.ip} dst ${b.ip}\\s+proto esp reqid 1 mode tunnel`));
    assert.match(policies, new RegExp(`src ${b.podCidr} dst ${a.podCidr}\\s+dir fwd priority 100`));
    for (const blocked of [DROPPED, BROKEN.podCidrs[0]])
      assert.match(
        policies,
        new RegExp(`src ${a.podCidr} dst ${blocked}\\s+dir out action block priority 4000`),
      );
    const table = routes(a);
    assert.match(table, new RegExp(`^${b.podCidr} dev ${UNDERLAY_DEVICE}`, "m"));
    assert.match(table, new RegExp(`^blackhole ${DROPPED}`, "m"));
    assert.match(table, new RegExp(`^blackhole ${BROKEN.podCidrs[0]}`, "m"));

    const before = xfrmStat(a);
    const capture = await topology.startCapture(a, "xfrm");
    assert.equal(ping(a, b.podIp), false, "a pod reached a remote pod with no ESP state");
    // (the blackholed prefixes never reach XFRM: the route drops them first)
    assert.equal(ping(a, "10.248.9.1"), false, "a dropped prefix was reachable");
    const { lines } = await capture.stop();
    const afterStat = xfrmStat(a);
    assert.ok(
      afterStat.XfrmOutNoStates > before.XfrmOutNoStates,
      "the tunnel policy did not hold the packet",
    );
    assert.deepEqual(
      lines.filter((l) => l.includes("10.248.")),
      [],
      "pod packets (or ARP for pod addresses) on the underlay",
    );
    const report = await backends.get(a)?.report([xfrmNode(b)]);
    assert.deepEqual(report?.peers[`c1/${b.id}`], { states: { in: 0, out: 0 } });
    assert.equal(report?.incomplete, false);
  });

  it("the persisted model holds no key; an agent stop leaves everything; a new instance adopts it", async (t) => {
    if (kernelEsp) return t.skip("covered with states in the lab test");
    const file = join(stateDir(a), XFRM_MODEL_FILE);
    assert.ok(existsSync(file));
    assert.equal(readFileSync(file, "utf8").includes(KEY_HEX), false);
    const policiesBefore = await listXfrmPolicies(a.netns);
    const routesBefore = routes(a);
    await backends.get(a)?.stop();
    assert.equal(await listXfrmPolicies(a.netns), policiesBefore);
    const next = new KernelXfrmIpsec({
      local: xfrmNode(a),
      underlayDevice: UNDERLAY_DEVICE,
      dir: stateDir(a),
      netns: a.netns,
      policiesOnly: true,
    });
    backends.set(a, next);
    await next.sync([xfrmNode(b), BROKEN], KEYS, { dropPrefixes: [DROPPED] });
    assert.equal(await listXfrmPolicies(a.netns), policiesBefore);
    assert.equal(routes(a), routesBefore);
  });

  it("a node that leaves the mesh takes its policies and routes with it", async (t) => {
    if (kernelEsp) return t.skip("covered with states in the lab test");
    await backends.get(a)?.sync([], KEYS, { dropPrefixes: [] });
    assert.equal((await listXfrmPolicies(a.netns)).trim(), "");
    assert.equal(routes(a).trim(), "");
  });

  it("applying is idempotent: a model naming objects that are already gone syncs cleanly", async () => {
    const stale = join(topology.dir, "stale.json");
    copyFileSync(join(stateDir(b), XFRM_MODEL_FILE), stale);
    await run(["ip", "xfrm", "policy", "flush"], { netns: b.netns });
    const xfrm = new KernelXfrm({ netns: b.netns, policiesOnly: true, modelFile: stale });
    await xfrm.remove();
    assert.equal((await listXfrmPolicies(b.netns)).trim(), "");
  });

  it("remove() takes every policy and route away: plain forwarding is back", async () => {
    for (const backend of backends.values()) await backend.remove();
    backends.clear();
    for (const node of topology.nodes) {
      assert.equal((await listXfrmPolicies(node.netns)).trim(), "");
      assert.equal(routes(node).trim(), "");
    }
    topology.inNode(a, ["ip", "route", "add", b.podCidr, "via", b.ip]);
    topology.inNode(b, ["ip", "route", "add", a.podCidr, "via", a.ip]);
    assert.ok(ping(a, b.podIp));
  });
});
