// End-to-end in network namespaces: two pods on node A, one pod on node B, nodes joined by a veth
// "underlay" and VXLAN (collect-metadata) driven by the datapath. Pod to pod across nodes, pod to
// VIP (TCP and UDP) with socket LB (client in the LB cgroup) and with per-packet NAT (client outside
// it), NodePort from node B's host network to node A's address (backends on A and on B), node B's
// own stack to a pod on A (tunnel egress), then everything is removed. Nothing here is connected to
// the root namespace.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { runSync } from "../../lib/exec.js";
import type { PolicyKey, PolicyRuleRef, PolicyValue } from "../../lib/policy/types.js";
import { type ProcessRef, startDaemon, stopProcess, waitFor } from "../../lib/process.js";
import {
  createTestCgroup,
  inCgroupArgv,
  mountPrivateBpffs,
  type PrivateBpffs,
  uniqueSuffix,
} from "../testing.js";
import { reconcileMaps } from "./apply.js";
import { ConfigFlags, Proto } from "./codecs.js";
import { Datapath } from "./loader.js";
import { flattenEndpointPolicy } from "./policy-entries.js";
import { PolicyMaps } from "./policy-maps.js";
import type { DesiredDatapathState, DesiredEndpoint } from "./reconcile.js";

const id = uniqueSuffix();
const ns = {
  nodeA: `dp${id}na`,
  nodeB: `dp${id}nb`,
  podA1: `dp${id}a1`,
  podA2: `dp${id}a2`,
  podB1: `dp${id}b1`,
};
const NODE_A_IP = "172.31.250.1";
const NODE_B_IP = "172.31.250.2";
const GATEWAY = "169.254.1.1";
const POD_MTU = 1450;
const TCP_VIP = "10.96.0.10";
const UDP_VIP = "10.96.0.11";
const LOCAL_VIP = "10.96.0.12";
const GATEWAY6 = "fe80::1";
const TCP_VIP6 = "fd00:96::10";
const UDP_VIP6 = "fd00:96::11";
const NODE_PORT_LOCAL = 30080; // on node A's address, backend on node A
const NODE_PORT_REMOTE = 30081; // on node A's address, backend on node B
const NODE_PORT_UDP = 30053; // on node A's address, backend on node B
const HOST_IDENTITY = 1;
const NODE_B_CLUSTER = 2;
/** an identity of node A's own cluster (1), which a pod on node B has no business sending */
const FORGED_IDENTITY = 0x01_0005;

interface Pod {
  netns: string;
  ip: string;
  ip6: string;
  hostIf: string;
  identity: number;
}
const pods = {
  a1: { netns: ns.podA1, ip: "10.1.0.10", ip6: "fd00:1::10", hostIf: `lxc${id}a1`, identity: 1001 },
  a2: { netns: ns.podA2, ip: "10.1.0.20", ip6: "fd00:1::20", hostIf: `lxc${id}a2`, identity: 1002 },
  // node B belongs to cluster 2: its pods' identities carry cluster id 2 in bits 16-23
  b1: { netns: ns.podB1, ip: "10.2.0.10", ip6: "fd00:2::10", hostIf: `lxc${id}b1`, identity: 0x02_07d1 },
} satisfies Record<string, Pod>;

function sh(netns: string, command: string, timeoutMs = 10_000): string {
  return runSync(["nsenter", `--net=/run/netns/${netns}`, "sh", "-c", command], { timeoutMs });
}

function linkInfo(netns: string, name: string): { ifindex: number; address: string } {
  const [info] = JSON.parse(sh(netns, `ip -j link show dev ${name}`));
  return { ifindex: info.ifindex, address: info.address };
}

function createPod(node: string, pod: Pod): void {
  runSync(["ip", "netns", "add", pod.netns]);
  sh(
    node,
    `ip link add ${pod.hostIf} type veth peer name eth0 netns ${pod.netns} && ip link set ${pod.hostIf} up`,
  );
  const hostMac = linkInfo(node, pod.hostIf).address;
  sh(
    pod.netns,
    [
      "ip link set lo up",
      `ip link set eth0 mtu ${POD_MTU} up`,
      `ip addr add ${pod.ip}/32 dev eth0`,
      `ip route add ${GATEWAY} dev eth0 scope link`,
      `ip route add default via ${GATEWAY} dev eth0`,
      `ip neigh add ${GATEWAY} lladdr ${hostMac} dev eth0 nud permanent`,
      // IPv6 the same way: a /128, a link-local gateway answered by a static neighbour entry
      `ip -6 addr add ${pod.ip6}/128 dev eth0 nodad`,
      `ip -6 route add default via ${GATEWAY6} dev eth0`,
      `ip -6 neigh add ${GATEWAY6} lladdr ${hostMac} dev eth0 nud permanent`,
    ].join(" && "),
  );
}

/** The pod's IPv4 and IPv6 endpoint entries. */
function endpointsOf(node: string, pod: Pod): DesiredEndpoint[] {
  const host = linkInfo(node, pod.hostIf);
  const mac = linkInfo(pod.netns, "eth0").address;
  return [pod.ip, pod.ip6].map((address) => ({
    address,
    ifindex: host.ifindex,
    identity: pod.identity,
    mac,
    nodeMac: host.address,
  }));
}

const PROBE = fileURLToPath(new URL("./probe.js", import.meta.url));
const ECHO_SERVER = fileURLToPath(new URL("./echo-server.js", import.meta.url));

/** Runs the probe client (wrapped into a netns/cgroup by wrap) and returns what it saw. */
function probe(
  args: string[],
  wrap: (command: string[]) => string[],
  timeoutMs = 5_000,
): { reply: string; peer: string } {
  const output = runSync(wrap([process.execPath, PROBE, ...args, String(timeoutMs)]), {
    timeoutMs: timeoutMs + 5_000,
  });
  return JSON.parse(output);
}

describe("datapath in network namespaces (two nodes over VXLAN)", { timeout: 60_000 }, () => {
  let bpffs: PrivateBpffs;
  let logDir: string;
  let nodeA: Datapath;
  let nodeB: Datapath;
  let stateA: DesiredDatapathState;
  let stateB: DesiredDatapathState;
  let socketLbCgroup: { path: string; cleanup(): void } | undefined;
  const servers: ProcessRef[] = [];
  const namespaces = Object.values(ns);

  before(async () => {
    bpffs = mountPrivateBpffs();
    logDir = mkdtempSync(join(tmpdir(), `dp${id}-logs-`));
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
          `ip link set vxlan0 mtu ${POD_MTU} up`,
        ].join(" && "),
      );
    }
    createPod(ns.nodeA, pods.a1);
    createPod(ns.nodeA, pods.a2);
    createPod(ns.nodeB, pods.b1);

    nodeA = Datapath.load({ pinRoot: join(bpffs.path, "nodeA") });
    // node B exercises the fallback for kernels without tcx: clsact filters instead of tcx links
    nodeB = Datapath.load({ pinRoot: join(bpffs.path, "nodeB"), tcAttachMode: "tc" });
    const services = [
      {
        frontend: { address: TCP_VIP, port: 80, proto: Proto.TCP },
        backends: [{ address: pods.b1.ip, port: 8080 }],
      },
      {
        frontend: { address: UDP_VIP, port: 53, proto: Proto.UDP },
        backends: [{ address: pods.b1.ip, port: 5353 }],
      },
      {
        frontend: { address: LOCAL_VIP, port: 80, proto: Proto.TCP },
        backends: [{ address: pods.a2.ip, port: 8080 }],
      },
      {
        frontend: { address: NODE_A_IP, port: NODE_PORT_LOCAL, proto: Proto.TCP },
        backends: [{ address: pods.a2.ip, port: 8080 }],
      },
      {
        frontend: { address: NODE_A_IP, port: NODE_PORT_REMOTE, proto: Proto.TCP },
        backends: [{ address: pods.b1.ip, port: 8080 }],
      },
      {
        frontend: { address: NODE_A_IP, port: NODE_PORT_UDP, proto: Proto.UDP },
        backends: [{ address: pods.b1.ip, port: 5353 }],
      },
      {
        frontend: { address: TCP_VIP6, port: 80, proto: Proto.TCP },
        backends: [{ address: pods.b1.ip6, port: 8080 }],
      },
      {
        frontend: { address: UDP_VIP6, port: 53, proto: Proto.UDP },
        backends: [{ address: pods.b1.ip6, port: 5353 }],
      },
    ];
    stateA = {
      services,
      endpoints: [...endpointsOf(ns.nodeA, pods.a1), ...endpointsOf(ns.nodeA, pods.a2)],
      remoteNodes: [
        {
          nodeIp: NODE_B_IP,
          podCidrs: ["10.2.0.0/24", "fd00:2::/64"],
          nodeIdentity: 6,
          podCidrIdentity: 2,
          clusterId: NODE_B_CLUSTER,
        },
      ],
      ipcache: [{ prefix: `${pods.b1.ip}/32`, identity: pods.b1.identity, tunnelEndpoint: NODE_B_IP }],
    };
    stateB = {
      services,
      endpoints: endpointsOf(ns.nodeB, pods.b1),
      remoteNodes: [
        { nodeIp: NODE_A_IP, podCidrs: ["10.1.0.0/24", "fd00:1::/64"], nodeIdentity: 6, podCidrIdentity: 2 },
      ],
      ipcache: [],
    };
    for (const [datapath, node, state, pod, nodeIp] of [
      [nodeA, ns.nodeA, stateA, [pods.a1, pods.a2], NODE_A_IP],
      [nodeB, ns.nodeB, stateB, [pods.b1], NODE_B_IP],
    ] as const) {
      const netnsPath = `/run/netns/${node}`;
      // replies of pods to the other node's address are routed by the node's stack (as the agent sets)
      sh(node, "sysctl -qw net.ipv4.ip_forward=1");
      datapath.maps.setNodeConfig({
        nodeIp,
        underlayIfindex: linkInfo(node, "eth0").ifindex,
        hostIdentity: HOST_IDENTITY,
      });
      datapath.attachNetdev(linkInfo(node, "eth0").ifindex, { netnsPath });
      datapath.maps.setConfig({
        tunnelIfindex: linkInfo(node, "vxlan0").ifindex,
        flags: ConfigFlags.Trace,
        worldIdentity: 2,
      });
      reconcileMaps(datapath.maps, state);
      datapath.attachTunnel(linkInfo(node, "vxlan0").ifindex, { netnsPath });
      for (const each of pod)
        datapath.attachEndpoint(each.hostIf, linkInfo(node, each.hostIf).ifindex, { netnsPath });
    }

    // node B's stack routes node A's pod CIDR into the tunnel, as the agent does (next hop with a
    // permanent neighbour entry: the collect-metadata device cannot resolve one itself)
    sh(
      ns.nodeB,
      [
        `ip route add 10.1.0.0/24 via 10.1.0.0 dev vxlan0 onlink`,
        `ip neigh add 10.1.0.0 lladdr ${linkInfo(ns.nodeA, "vxlan0").address} dev vxlan0 nud permanent`,
      ].join(" && "),
    );

    const serve = (pod: Pod, proto: "tcp" | "udp", port: number, host: string) =>
      servers.push(
        startDaemon({
          argv: [process.execPath, ECHO_SERVER, proto, String(port), host],
          netns: pod.netns,
          logFile: join(logDir, `${pod.netns}-${proto}-${servers.length}.log`),
        }),
      );
    for (const host of ["0.0.0.0", "::"]) {
      serve(pods.b1, "tcp", 8080, host);
      serve(pods.b1, "udp", 5353, host);
    }
    serve(pods.a2, "tcp", 8080, "0.0.0.0");
    await waitFor("servers listening", () => {
      const b1 = sh(pods.b1.netns, "ss -Hlntu");
      const a2 = sh(pods.a2.netns, "ss -Hlnt");
      const listening = (text: string, socket: string) => text.includes(socket);
      return (
        ["0.0.0.0:8080", "0.0.0.0:5353", "[::]:8080", "[::]:5353"].every((socket) => listening(b1, socket)) &&
        listening(a2, "0.0.0.0:8080")
      );
    });
  });

  after(async () => {
    for (const server of servers) await stopProcess(server, 2_000);
    for (const datapath of [nodeA, nodeB]) {
      datapath?.detachAll();
      datapath?.close();
    }
    for (const name of namespaces) {
      if (existsSync(`/run/netns/${name}`)) runSync(["ip", "netns", "del", name]);
    }
    socketLbCgroup?.cleanup();
    bpffs?.cleanup();
    if (logDir) rmSync(logDir, { recursive: true, force: true });
  });

  it("pod to pod across nodes, with the source identity in the tunnel key", () => {
    sh(pods.a1.netns, `ping -c 3 -i 0.05 -W 2 -q ${pods.b1.ip}`);
    const traceA = nodeA.maps.readTrace();
    const traceB = nodeB.maps.readTrace();
    assert.equal(traceA.txTunnelId, pods.a1.identity);
    assert.equal(traceA.txRemoteIp, NODE_B_IP);
    assert.equal(traceB.rxIdentity, pods.a1.identity, "node B took the source identity from the tunnel key");
    assert.equal(traceB.rxRemoteIp, NODE_A_IP);
    assert.equal(nodeA.maps.readTrace().rxIdentity, pods.b1.identity, "and node A for the replies");
  });

  it("IPv6 pod to pod across nodes over the IPv4 underlay", () => {
    const before = nodeB.maps.readTrace().rxCount;
    sh(pods.a1.netns, `ping -6 -c 3 -i 0.05 -W 2 -q ${pods.b1.ip6}`);
    assert.ok(nodeB.maps.readTrace().rxCount - before >= 3);
    assert.equal(nodeB.maps.readTrace().rxIdentity, pods.a1.identity);
  });

  it("pod to pod on the same node through a local redirect", () => {
    const before = nodeA.maps.readMetrics().ForwardLocal.packets;
    sh(pods.a1.netns, `ping -c 2 -i 0.05 -W 2 -q ${pods.a2.ip}`);
    assert.ok(nodeA.maps.readMetrics().ForwardLocal.packets - before >= 4n);
  });

  it("per-packet NAT: TCP and UDP VIPs (IPv4, IPv6) across nodes, and a VIP with a local backend", () => {
    const before = nodeA.maps.readMetrics();
    const inPod = (argv: string[]) =>
      probe(argv, (command) => ["nsenter", `--net=/run/netns/${pods.a1.netns}`, ...command]);
    assert.deepEqual(inPod(["tcp", TCP_VIP, "80"]), {
      reply: `tcp-from-${pods.a1.ip}`, // the backend saw the client's own address
      peer: `${TCP_VIP}:80`,
    });
    assert.deepEqual(inPod(["udp-connect", UDP_VIP, "53"]), {
      reply: `udp-from-${pods.a1.ip}`,
      peer: `${UDP_VIP}:53`,
    });
    assert.deepEqual(inPod(["tcp", LOCAL_VIP, "80"]), {
      reply: `tcp-from-${pods.a1.ip}`,
      peer: `${LOCAL_VIP}:80`,
    });
    assert.deepEqual(inPod(["tcp", TCP_VIP6, "80"]), {
      reply: `tcp-from-${pods.a1.ip6}`,
      peer: `${TCP_VIP6}:80`,
    });
    assert.deepEqual(inPod(["udp-connect", UDP_VIP6, "53"]), {
      reply: `udp-from-${pods.a1.ip6}`,
      peer: `${UDP_VIP6}:53`,
    });
    const now = nodeA.maps.readMetrics();
    assert.ok(now.LbDnat.packets > before.LbDnat.packets, "DNAT in from-pod");
    assert.ok(now.LbRevNat.packets > before.LbRevNat.packets, "reverse NAT in to-pod");
    assert.equal(now.SockLb.packets, before.SockLb.packets, "no socket LB outside the cgroup");
  });

  it("socket LB (IPv4, IPv6): a client in the pod's cgroup is balanced at connect/sendmsg, no packet NAT", () => {
    socketLbCgroup = createTestCgroup(`dp${id}-podA1`);
    nodeA.attachSocketLb("podA1", socketLbCgroup.path);
    const cgroupPath = socketLbCgroup.path;
    const inPod = (argv: string[]) =>
      probe(argv, (command) =>
        inCgroupArgv(cgroupPath, ["nsenter", `--net=/run/netns/${pods.a1.netns}`, ...command]),
      );
    const before = nodeA.maps.readMetrics();
    // connect4 picks the backend, getpeername4 still shows the VIP to the application
    assert.deepEqual(inPod(["tcp", TCP_VIP, "80"]), {
      reply: `tcp-from-${pods.a1.ip}`,
      peer: `${TCP_VIP}:80`,
    });
    assert.deepEqual(inPod(["udp-connect", UDP_VIP, "53"]), {
      reply: `udp-from-${pods.a1.ip}`,
      peer: `${UDP_VIP}:53`,
    });
    // unconnected UDP: sendmsg4 rewrites the VIP, recvmsg4 shows the VIP as the reply's source
    assert.deepEqual(inPod(["udp-sendto", UDP_VIP, "53"]), {
      reply: `udp-from-${pods.a1.ip}`,
      peer: `${UDP_VIP}:53`,
    });
    // the same through the IPv6 hooks
    assert.deepEqual(inPod(["tcp", TCP_VIP6, "80"]), {
      reply: `tcp-from-${pods.a1.ip6}`,
      peer: `${TCP_VIP6}:80`,
    });
    assert.deepEqual(inPod(["udp-sendto", UDP_VIP6, "53"]), {
      reply: `udp-from-${pods.a1.ip6}`,
      peer: `${UDP_VIP6}:53`,
    });
    const now = nodeA.maps.readMetrics();
    const rewritten = now.SockLb.packets - before.SockLb.packets;
    assert.ok(rewritten >= 5n, `rewritten at the socket (${rewritten} times)`);
    assert.equal(now.LbDnat.packets, before.LbDnat.packets, "no per-packet DNAT for these sockets");
    nodeA.detachSocketLb("podA1");
  });

  it("NodePort from node B's host network to node A's address: backends on A and on B", () => {
    const fromNodeB = (argv: string[]) =>
      probe(argv, (command) => ["nsenter", `--net=/run/netns/${ns.nodeB}`, ...command]);
    const before = nodeA.maps.readMetrics();
    // the backends see node A (SNAT), the client sees the NodePort it asked for
    assert.deepEqual(fromNodeB(["tcp", NODE_A_IP, String(NODE_PORT_LOCAL)]), {
      reply: `tcp-from-${NODE_A_IP}`,
      peer: `${NODE_A_IP}:${NODE_PORT_LOCAL}`,
    });
    assert.deepEqual(fromNodeB(["tcp", NODE_A_IP, String(NODE_PORT_REMOTE)]), {
      reply: `tcp-from-${NODE_A_IP}`,
      peer: `${NODE_A_IP}:${NODE_PORT_REMOTE}`,
    });
    assert.deepEqual(fromNodeB(["udp-connect", NODE_A_IP, String(NODE_PORT_UDP)]), {
      reply: `udp-from-${NODE_A_IP}`,
      peer: `${NODE_A_IP}:${NODE_PORT_UDP}`,
    });
    const now = nodeA.maps.readMetrics();
    assert.ok(now.NodePortDnat.packets - before.NodePortDnat.packets >= 3n, "DNAT + SNAT in from-netdev");
    assert.ok(now.NodePortRevNat.packets - before.NodePortRevNat.packets >= 3n, "replies restored");
    assert.ok(
      now.ForwardTunnel.packets > before.ForwardTunnel.packets,
      "node B's backend through the tunnel",
    );
  });

  it("node B's own stack reaches a pod on node A through the tunnel egress program", () => {
    const before = nodeB.maps.readMetrics().TunnelHostTx.packets;
    assert.deepEqual(
      probe(["tcp", pods.a2.ip, "8080"], (command) => [
        "nsenter",
        `--net=/run/netns/${ns.nodeB}`,
        ...command,
      ]),
      { reply: `tcp-from-${NODE_B_IP}`, peer: `${pods.a2.ip}:8080` },
    );
    assert.ok(nodeB.maps.readMetrics().TunnelHostTx.packets > before, "keyed on node B's VXLAN egress");
    const trace = nodeA.maps.readTrace();
    assert.equal(trace.rxIdentity, HOST_IDENTITY, "node A saw node B's host identity in the key");
    assert.equal(trace.rxRemoteIp, NODE_B_IP);
  });

  it("network policy: a2 admits b1 (cluster 2) over the tunnel, not a1; a forged identity from node B never matches", () => {
    const policy = PolicyMaps.open(join(bpffs.path, "nodeA"));
    const rule: PolicyRuleRef = {
      kind: "CiliumNetworkPolicy",
      namespace: "default",
      name: "a2",
      direction: "ingress",
      index: 0,
    };
    const allowOn8080 = (identity: number): [PolicyKey, PolicyValue] => [
      { direction: "ingress", identity, protocol: Proto.TCP, port: 8080, endPort: 8080 },
      { verdict: "allow", rule },
    ];
    const flat = flattenEndpointPolicy(
      {
        enforced: { ingress: true, egress: false },
        // the forged identity is allowed too: what must stop it is the cluster check, not the rule
        entries: [allowOn8080(pods.b1.identity), allowOn8080(FORGED_IDENTITY)],
      },
      { policyId: 1, ruleNumber: () => 1 },
    );
    const a2 = new Set([pods.a2.ip, pods.a2.ip6]);
    const enforcedA = {
      ...stateA,
      endpoints: stateA.endpoints.map((endpoint) =>
        a2.has(endpoint.address) ? { ...endpoint, policyFlags: flat.flags } : endpoint,
      ),
    };
    const from = (pod: Pod) => (command: string[]) => [
      "nsenter",
      `--net=/run/netns/${pod.netns}`,
      ...command,
    ];
    try {
      policy.write([...flat.entries.values()], []);
      reconcileMaps(nodeA.maps, enforcedA);
      const before = nodeA.maps.readMetrics();
      assert.deepEqual(probe(["tcp", pods.a2.ip, "8080"], from(pods.b1)), {
        reply: `tcp-from-${pods.b1.ip}`,
        peer: `${pods.a2.ip}:8080`,
      });
      assert.throws(() => probe(["tcp", pods.a2.ip, "8080"], from(pods.a1), 1_000), "a1 is not admitted");
      const afterLocal = nodeA.maps.readMetrics();
      assert.ok(afterLocal.DropPolicy.packets > before.DropPolicy.packets, "counted as a policy drop");
      assert.ok(
        policy.readDrops().some((drop) => drop.policyId === 1 && drop.rule === 0 && drop.packets > 0n),
        "and against a2's default deny",
      );

      // node B now claims a cluster-1 identity for b1: node A owns no such trust for node B
      reconcileMaps(nodeB.maps, {
        ...stateB,
        endpoints: stateB.endpoints.map((endpoint) => ({ ...endpoint, identity: FORGED_IDENTITY })),
      });
      assert.throws(
        () => probe(["tcp", pods.a2.ip, "8080"], from(pods.b1), 1_000),
        "the forged identity is world",
      );
      assert.equal(nodeB.maps.readTrace().txTunnelId, FORGED_IDENTITY, "node B did send the forged identity");
      assert.ok(
        nodeA.maps.readMetrics().PolicyForgedIdentity.packets > afterLocal.PolicyForgedIdentity.packets,
        "node A counted the forgery",
      );
    } finally {
      reconcileMaps(nodeB.maps, stateB);
      reconcileMaps(nodeA.maps, stateA);
      policy.write(
        [],
        [...flat.entries.values()].map(([key]) => key),
      );
      policy.close();
    }
  });

  it("removes everything it attached", () => {
    assert.match(
      sh(ns.nodeB, `tc filter show dev ${pods.b1.hostIf} ingress`),
      /cm_from_pod/,
      "node B uses clsact",
    );
    for (const datapath of [nodeA, nodeB]) {
      assert.ok(datapath.attachedLinks().length > 0);
      datapath.detachAll();
      assert.deepEqual(datapath.attachedLinks(), []);
    }
    assert.doesNotMatch(sh(ns.nodeB, `tc filter show dev ${pods.b1.hostIf} ingress`), /cm_from_pod/);
    // with the programs detached, VIP traffic is no longer translated
    assert.throws(() =>
      probe(
        ["tcp", TCP_VIP, "80"],
        (command) => ["nsenter", `--net=/run/netns/${pods.a1.netns}`, ...command],
        1_000,
      ),
    );
  });
});
