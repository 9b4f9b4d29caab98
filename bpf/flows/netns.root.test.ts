// Real packets through the kernel produce the right flow events: two nodes in network namespaces
// joined by a veth underlay and VXLAN, one pod each (pod b1's identity carries cluster id 2, as a
// remote cluster's would). A ping across, and a UDP datagram to a service without backends, are
// read back from each node's ring. Nothing here is connected to the root namespace.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runSync } from "../../lib/exec.js";
import { waitFor } from "../../lib/process.js";
import { reconcileMaps } from "../datapath/apply.js";
import { Proto } from "../datapath/codecs.js";
import { Datapath } from "../datapath/loader.js";
import type { DesiredDatapathState, DesiredEndpoint } from "../datapath/reconcile.js";
import { mountPrivateBpffs, type PrivateBpffs, uniqueSuffix } from "../testing.js";
import { AddressBook } from "./address-book.js";
import { type FlowEvent, FlowType } from "./event.js";
import { FlowSource } from "./source.js";

const id = uniqueSuffix();
const ns = { nodeA: `flw${id}na`, nodeB: `flw${id}nb`, podA: `flw${id}pa`, podB: `flw${id}pb` };
const NODE_A_IP = "172.31.251.1";
const NODE_B_IP = "172.31.251.2";
const GATEWAY = "169.254.1.1";
const DEAD_VIP = "10.96.7.7";
const pods = {
  a: { netns: ns.podA, ip: "10.1.0.10", hostIf: `flw${id}la`, identity: 0x10000 | 1001 },
  b: { netns: ns.podB, ip: "10.2.0.10", hostIf: `flw${id}lb`, identity: 0x20000 | 2001 },
};
type Pod = (typeof pods)["a"];

function sh(netns: string, command: string): string {
  return runSync(["nsenter", `--net=/run/netns/${netns}`, "sh", "-c", command], { timeoutMs: 10_000 });
}

function link(netns: string, name: string): { ifindex: number; address: string } {
  const [info] = JSON.parse(sh(netns, `ip -j link show dev ${name}`));
  return { ifindex: info.ifindex, address: info.address };
}

function createPod(node: string, pod: Pod): DesiredEndpoint {
  runSync(["ip", "netns", "add", pod.netns]);
  sh(
    node,
    `ip link add ${pod.hostIf} type veth peer name eth0 netns ${pod.netns} && ip link set ${pod.hostIf} up`,
  );
  const host = link(node, pod.hostIf);
  sh(
    pod.netns,
    [
      "ip link set lo up",
      "ip link set eth0 mtu 1450 up",
      `ip addr add ${pod.ip}/32 dev eth0`,
      `ip route add ${GATEWAY} dev eth0 scope link`,
      `ip route add default via ${GATEWAY} dev eth0`,
      `ip neigh add ${GATEWAY} lladdr ${host.address} dev eth0 nud permanent`,
    ].join(" && "),
  );
  return {
    address: pod.ip,
    ifindex: host.ifindex,
    identity: pod.identity,
    mac: link(pod.netns, "eth0").address,
    nodeMac: host.address,
  };
}

describe("flow events from real packets (network namespaces, VXLAN)", { timeout: 60_000 }, () => {
  let bpffs: PrivateBpffs;
  const nodes: Array<{ datapath: Datapath; source: FlowSource; book: AddressBook; events: FlowEvent[] }> = [];
  const read = (index: number) => {
    const node = nodes[index];
    node.source.drain();
    return node.events.map((event) => node.book.resolve(event));
  };

  before(() => {
    bpffs = mountPrivateBpffs("cm-flw-netns-");
    for (const node of [ns.nodeA, ns.nodeB]) runSync(["ip", "netns", "add", node]);
    sh(ns.nodeA, `ip link add eth0 type veth peer name eth0b netns ${ns.nodeB}`);
    sh(ns.nodeB, "ip link set eth0b name eth0");
    for (const [node, ip] of [
      [ns.nodeA, NODE_A_IP],
      [ns.nodeB, NODE_B_IP],
    ]) {
      sh(
        node,
        [
          "sysctl -qw net.ipv6.conf.all.disable_ipv6=1",
          "ip link set lo up",
          `ip addr add ${ip}/24 dev eth0`,
          "ip link set eth0 up",
          "ip link add vxlan0 type vxlan external dstport 4789",
          "ip link set vxlan0 mtu 1450 up",
        ].join(" && "),
      );
    }
    const endpointA = createPod(ns.nodeA, pods.a);
    const endpointB = createPod(ns.nodeB, pods.b);
    const services = [{ frontend: { address: DEAD_VIP, port: 53, proto: Proto.UDP }, backends: [] }];
    const states: DesiredDatapathState[] = [
      {
        services,
        endpoints: [endpointA],
        remoteNodes: [
          {
            nodeIp: NODE_B_IP,
            podCidrs: ["10.2.0.0/24"],
            nodeIdentity: 6,
            podCidrIdentity: 2,
            remoteCluster: true,
          },
        ],
        ipcache: [
          {
            prefix: `${pods.b.ip}/32`,
            identity: pods.b.identity,
            tunnelEndpoint: NODE_B_IP,
            remoteCluster: true,
          },
        ],
      },
      {
        services,
        endpoints: [endpointB],
        remoteNodes: [
          {
            nodeIp: NODE_A_IP,
            podCidrs: ["10.1.0.0/24"],
            nodeIdentity: 6,
            podCidrIdentity: 2,
            remoteCluster: true,
          },
        ],
        ipcache: [
          {
            prefix: `${pods.a.ip}/32`,
            identity: pods.a.identity,
            tunnelEndpoint: NODE_A_IP,
            remoteCluster: true,
          },
        ],
      },
    ];
    for (const [index, node, pod] of [
      [0, ns.nodeA, pods.a],
      [1, ns.nodeB, pods.b],
    ] as const) {
      const netnsPath = `/run/netns/${node}`;
      sh(node, "sysctl -qw net.ipv4.ip_forward=1");
      const pinRoot = join(bpffs.path, `node${index}`);
      const datapath = Datapath.load({ pinRoot });
      datapath.maps.setConfig({ tunnelIfindex: link(node, "vxlan0").ifindex, flags: 0, worldIdentity: 2 });
      reconcileMaps(datapath.maps, states[index]);
      datapath.attachTunnel(link(node, "vxlan0").ifindex, { netnsPath });
      datapath.attachEndpoint(pod.hostIf, link(node, pod.hostIf).ifindex, { netnsPath });
      const events: FlowEvent[] = [];
      const source = FlowSource.open(pinRoot, { onEvent: (event) => events.push(event) });
      source.setReporting("on");
      nodes.push({ datapath, source, book: new AddressBook(states[index]), events });
    }
  });

  after(() => {
    for (const node of nodes) {
      node.source.close();
      node.datapath.detachAll();
      node.datapath.close();
    }
    for (const name of Object.values(ns))
      if (existsSync(`/run/netns/${name}`)) runSync(["ip", "netns", "del", name]);
    bpffs?.cleanup();
  });

  it("a ping across the tunnel: to-overlay on the sender, from-overlay and to-pod on the receiver", () => {
    sh(pods.a.netns, `ping -c 3 -i 0.05 -W 2 -q ${pods.b.ip}`);
    const isRequest = (event: FlowEvent) => event.source === pods.a.ip && event.destination === pods.b.ip;
    const sent = read(0).filter(isRequest);
    const received = read(1).filter(isRequest);
    const [out] = sent.filter((event) => event.hook === "from-pod");
    assert.ok(
      out,
      `node A saw the request leave: ${read(0)
        .map((e) => `${e.hook} ${e.source}>${e.destination} ${e.reason}`)
        .join("; ")}`,
    );
    assert.equal(out.type, FlowType.Trace);
    assert.equal(out.reason, "ForwardTunnel");
    assert.equal(out.proto, 1);
    assert.deepEqual(
      [out.sourceIdentity, out.destinationIdentity, out.tunnelPeer],
      [pods.a.identity, pods.b.identity, NODE_B_IP],
    );
    assert.equal(out.ifindex, link(ns.nodeA, pods.a.hostIf).ifindex);

    const [arrived] = received.filter((event) => event.hook === "from-tunnel");
    assert.ok(arrived, "node B saw it arrive from the tunnel");
    assert.equal(arrived.sourceIdentity, pods.a.identity, "from the tunnel key");
    assert.equal(arrived.tunnelPeer, NODE_A_IP);
    const [delivered] = received.filter((event) => event.hook === "to-pod");
    assert.ok(delivered, "and delivered it to the pod");
    assert.equal(delivered.sourceIdentity, pods.a.identity, "from the skb mark");
    assert.equal(delivered.destinationIdentity, pods.b.identity);
    assert.ok(
      read(1).some((event) => event.source === pods.b.ip && event.hook === "from-pod"),
      "the reply",
    );
  });

  it("a datagram to a service without backends: a drop with its reason, the packet gone", async () => {
    const dropsBefore = nodes[1].datapath.maps.readMetrics().DropNoBackend.packets;
    // one datagram from port 40053 (a node one-liner: the machine has no netcat for UDP)
    const send = `const s=require("dgram").createSocket("udp4");s.bind(40053,()=>s.send("hello",53,"${DEAD_VIP}",()=>s.close()))`;
    const output = sh(pods.b.netns, `${process.execPath} -e '${send}' 2>&1 || true`);
    const drop = await waitFor(
      `the drop event (nc: ${output}; drops ${nodes[1].datapath.maps.readMetrics().DropNoBackend.packets})`,
      () => read(1).find((event) => event.type === FlowType.Drop && event.destination === DEAD_VIP),
      { timeoutMs: 3000 },
    );
    assert.equal(drop.reason, "DropNoBackend");
    assert.equal(drop.hook, "from-pod");
    assert.deepEqual(
      [drop.source, drop.sourcePort, drop.destinationPort, drop.proto],
      [pods.b.ip, 40053, 53, Proto.UDP],
    );
    assert.equal(drop.sourceIdentity >> 16, 2, "the sender's identity, of cluster 2");
    assert.ok(nodes[1].datapath.maps.readMetrics().DropNoBackend.packets > dropsBefore);
    assert.equal(nodes[1].source.lostEvents(), 0n);
  });
});
