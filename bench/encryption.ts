// Pod-to-pod TCP throughput between two node netns: plain routing vs WireGuard (kernel or
// wireguard-go) vs IPsec (kernel XFRM is unavailable here, so strongSwan kernel-libipsec), in one
// run, printed as a table with ratios to plain. Usage (root): node dist/bench/encryption.js [seconds]
import { join } from "node:path";
import { parseIpsecKeys } from "../agent/encryption/ipsec/keys.js";
import { StrongSwanIpsec } from "../agent/encryption/ipsec/strongswan.js";
import { type TestNode, TwoNodeTopology } from "../agent/encryption/testing/two-nodes.js";
import { WireGuardManager } from "../agent/encryption/wireguard/manager.js";
import { wireGuardInterfaceName } from "../lib/api/encryption.js";
import { waitFor } from "../lib/process.js";

const seconds = Number(process.argv[2] ?? 3);
const boot = (c: string) => `${c.repeat(8)}-${c.repeat(4)}-${c.repeat(4)}-${c.repeat(4)}-${c.repeat(12)}`;

async function iperf(topology: TwoNodeTopology): Promise<number> {
  const [a, b] = topology.nodes;
  topology.start(b.podNetns, ["iperf3", "-s", "-1"], "iperf3-server");
  await waitFor("iperf3 server", () => topology.inPod(b, ["ss", "-Hltn", "sport = :5201"]).includes(":5201"));
  const out = topology.inPod(a, ["iperf3", "-c", b.podIp, "-t", String(seconds), "-J"], {
    timeoutMs: (seconds + 20) * 1000,
  });
  return (JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } }).end.sum_received
    .bits_per_second;
}

async function measure(
  name: string,
  octet: number,
  setUp: (t: TwoNodeTopology) => Promise<() => Promise<void>>,
) {
  const topology = new TwoNodeTopology(octet);
  let tearDown: (() => Promise<void>) | undefined;
  try {
    topology.create();
    tearDown = await setUp(topology);
    return { name, bps: await iperf(topology) };
  } finally {
    await tearDown?.().catch((error) => console.error("teardown:", error));
    await topology.destroy();
  }
}

function plainRoutes(topology: TwoNodeTopology): void {
  for (const node of topology.nodes) {
    const other = topology.other(node);
    topology.inNode(node, ["ip", "route", "add", other.podCidr, "via", other.ip]);
  }
}

const results = [
  await measure("plain", 240, async (t) => {
    plainRoutes(t);
    return async () => {};
  }),
  await measure("wireguard", 241, async (t) => {
    const managers: WireGuardManager[] = [];
    const record = (n: TestNode, key: string) => ({
      cluster: "bench",
      name: n.id,
      nodeIp: n.ip,
      podCidrs: [n.podCidr],
      wireguardPublicKey: key,
    });
    for (const node of t.nodes) {
      managers.push(
        await WireGuardManager.start({
          local: { cluster: "bench", name: node.id },
          stateDir: join(t.dir, `wg-${node.id}`),
          ifname: wireGuardInterfaceName(node.uniquePrefix),
          netns: node.netns,
        }),
      );
    }
    for (const manager of managers) {
      manager.setNodes(t.nodes.map((n, i) => record(n, managers[i].publicKey)));
      await manager.sync();
    }
    return async () => {
      for (const manager of managers) await manager.stop();
    };
  }),
  await measure("ipsec (libipsec)", 242, async (t) => {
    const keys = parseIpsecKeys(`3+ rfc4106(gcm(aes)) ${"0102030405060708090a0b0c0d0e0f1011121314"} 128`);
    const xfrmNode = (n: TestNode) => ({
      node: `bench/${n.id}`,
      ip: n.ip,
      podCidrs: [n.podCidr],
      bootId: boot(n.id),
    });
    const instances: StrongSwanIpsec[] = [];
    for (const node of t.nodes) {
      instances.push(
        await StrongSwanIpsec.start({
          dir: join(t.dir, `ipsec-${node.id}`),
          netns: node.netns,
          local: xfrmNode(node),
        }),
      );
    }
    const [a, b] = t.nodes;
    await instances[1].sync([xfrmNode(a)], keys);
    await instances[0].sync([xfrmNode(b)], keys);
    return async () => {
      for (const instance of instances) await instance.stop();
    };
  }),
];

const plain = results[0].bps;
console.log(`pod-to-pod TCP, iperf3 ${seconds} s, two node netns on a veth pair`);
console.log("mode               Mbit/s   ratio to plain");
for (const { name, bps } of results) {
  console.log(`${name.padEnd(18)} ${(bps / 1e6).toFixed(0).padStart(7)}   ${(bps / plain).toFixed(3)}`);
}
