// The agent end to end without the full lab: two nodes (netns on a bridge), etcd + the lab's API
// server, agents started like the lab starts them, pods created through the CNI plugin like a
// runtime does. Checks connectivity, services, bad input, leaks and restarts (see each test).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { waitFor } from "../lib/process.js";
import { AgentTestCluster, type TestNode, type TestPod, tail } from "./testing/cluster.js";

const cluster = new AgentTestCluster();
let n1: TestNode;
let n2: TestNode;
const pods: Record<string, TestPod> = {};

describe("agent (root: netns, BPF, etcd, API server)", { timeout: 180_000 }, () => {
  before(async () => {
    await cluster.start(2);
    [n1, n2] = cluster.nodes;
    await Promise.all([cluster.startAgent(n1), cluster.startAgent(n2)]);
  });

  after(async () => {
    if (process.env.AGENT_TEST_LOGS)
      for (const node of cluster.nodes)
        process.stderr.write(`--- ${node.name}\n${tail(node.logFile, 200)}\n`);
    await cluster.stop();
  });

  it("creates pod endpoints through the CNI plugin", async () => {
    pods.a1 = await cluster.startPod(n1, { labels: { app: "echo" } });
    pods.a2 = await cluster.startPod(n1, { labels: { app: "client" } });
    pods.b1 = await cluster.startPod(n2, { labels: { app: "echo" } });
    for (const pod of Object.values(pods)) assert.match(pod.ip ?? "", /^10\.244\.[12]\.\d+$/);
    const eth0 = JSON.parse(cluster.inPod(pods.a1, "ip -j link show dev eth0"))[0];
    assert.equal(eth0.mtu, 1450);
    const status = await cluster.status(n1);
    assert.equal(status.ready, true);
    assert.equal(status.endpoints.length, 2);
    assert.equal(status.podCidr, n1.podCidr);
    // same labels on two nodes -> one identity, in cluster 7's range
    const s2 = await cluster.status(n2);
    const idA1 = status.endpoints.find((e) => e.ip === pods.a1.ip)?.identity;
    const idB1 = s2.endpoints.find((e) => e.ip === pods.b1.ip)?.identity;
    assert.equal(idA1, idB1);
    assert.equal((idA1 ?? 0) >> 16, 7);
  });

  it("pod to pod on one node and across nodes (VXLAN)", async () => {
    cluster.inPod(pods.a2, `ping -c 2 -i 0.05 -W 2 -q ${pods.a1.ip}`);
    await waitFor("ipcache of n1 to hold b1", async () =>
      (await cluster.status(n1)).ipcache.some(
        (e) => e.prefix === `${pods.b1.ip}/32` && e.tunnelEndpoint === n2.ip,
      ),
    );
    cluster.inPod(pods.a2, `ping -c 2 -i 0.05 -W 2 -q ${pods.b1.ip}`);
    cluster.inPod(pods.b1, `ping -c 2 -i 0.05 -W 2 -q ${pods.a1.ip}`);
  });
});
