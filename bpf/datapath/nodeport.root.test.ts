// BPF_PROG_TEST_RUN tests of NodePort from outside the node (from-netdev + the reply hooks) and of
// the tunnel egress program (the node's own traffic into the VXLAN device). Root, no namespaces.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { mountPrivateBpffs, type PrivateBpffs } from "../testing.js";
import { reconcileMaps } from "./apply.js";
import { ConfigFlags, type Metric, Proto } from "./codecs.js";
import { Datapath, ProgramName } from "./loader.js";
import { buildPacket, parsePacket } from "./packet.js";
import type { DesiredDatapathState, DesiredService } from "./reconcile.js";

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;

const NODE_IP = "172.20.0.1";
const UNDERLAY_IFINDEX = 3;
const HOST_IDENTITY = 1;
const WORLD_IDENTITY = 2;
const EXTERNAL_CLIENT = "172.20.0.9";
const LOCAL_POD = "10.1.0.20";
const LOCAL_POD_IDENTITY = 5000;
const REMOTE_NODE = "172.20.0.2";
const REMOTE_POD = "10.2.0.10";
const NODE_PORT = 30080;
const SNAT_MIN = 61000;

const state = (services: DesiredService[]): DesiredDatapathState => ({
  services,
  endpoints: [
    {
      address: LOCAL_POD,
      ifindex: 12,
      identity: LOCAL_POD_IDENTITY,
      mac: "02:aa:00:00:00:20",
      nodeMac: "02:bb:00:00:00:20",
    },
  ],
  remoteNodes: [{ nodeIp: REMOTE_NODE, podCidrs: ["10.2.0.0/24"], nodeIdentity: 6, podCidrIdentity: 2 }],
  ipcache: [],
});

const nodePort = (proto: number, backends: string[]): DesiredService => ({
  frontend: { address: NODE_IP, port: NODE_PORT, proto },
  backends: backends.map((address) => ({ address, port: 8080 })),
});

describe("NodePort from outside the node and host traffic into the tunnel (BPF_PROG_TEST_RUN)", () => {
  let bpffs: PrivateBpffs;
  let datapath: Datapath;
  const run = (program: string, data: Buffer) => datapath.program(program).testRun({ data });
  const packets = (metric: keyof typeof Metric) => datapath.maps.readMetrics()[metric].packets;
  const tuple = (frame: Buffer) => {
    const p = parsePacket(frame);
    return [p.saddr, p.sport, p.daddr, p.dport] as const;
  };

  before(() => {
    bpffs = mountPrivateBpffs();
    datapath = Datapath.load({ pinRoot: `${bpffs.path}/node` });
    datapath.maps.setConfig({ tunnelIfindex: 77, flags: ConfigFlags.Trace, worldIdentity: WORLD_IDENTITY });
    datapath.maps.setNodeConfig({
      nodeIp: NODE_IP,
      underlayIfindex: UNDERLAY_IFINDEX,
      hostIdentity: HOST_IDENTITY,
    });
  });
  after(() => {
    datapath?.close();
    bpffs?.cleanup();
  });
  beforeEach(() => {
    datapath.maps.resetMetrics();
    for (const key of [...datapath.maps.nodePort.keys()]) datapath.maps.nodePort.delete(key);
  });

  for (const proto of [Proto.TCP, Proto.UDP]) {
    const name = proto === Proto.TCP ? "TCP" : "UDP";

    it(`${name} to a local backend: DNAT + SNAT with valid checksums, the reply restored by from-pod`, () => {
      reconcileMaps(datapath.maps, state([nodePort(proto, [LOCAL_POD])]));
      const request = buildPacket({
        saddr: EXTERNAL_CLIENT,
        daddr: NODE_IP,
        proto,
        sport: 40001,
        dport: NODE_PORT,
      });
      const forward = run(ProgramName.fromNetdev, request);
      assert.equal(forward.returnValue, TC_ACT_REDIRECT, "redirected to the endpoint's veth");
      const sent = parsePacket(forward.data);
      assert.equal(sent.daddr, LOCAL_POD);
      assert.equal(sent.dport, 8080);
      assert.equal(sent.saddr, NODE_IP, "SNAT to the node: the reply comes back through it");
      assert.ok(sent.sport >= SNAT_MIN, `SNAT port ${sent.sport} above the ephemeral range`);
      assert.equal(sent.dstMac, "02:aa:00:00:00:20");
      assert.ok(sent.ipChecksumValid, "IP checksum");
      assert.ok(sent.l4ChecksumValid, `${name} checksum`);
      assert.equal(packets("NodePortDnat"), 1n);
      assert.equal(packets("ForwardLocal"), 1n);

      // the next packet of the flow keeps backend and SNAT port
      assert.deepEqual(tuple(run(ProgramName.fromNetdev, request).data), tuple(forward.data));
      assert.equal(packets("CtHit"), 1n);

      const reply = buildPacket({ saddr: LOCAL_POD, daddr: NODE_IP, proto, sport: 8080, dport: sent.sport });
      const back = run(ProgramName.fromPod, reply);
      assert.equal(back.returnValue, TC_ACT_REDIRECT, "sent out of the underlay");
      const received = parsePacket(back.data);
      assert.deepEqual(tuple(back.data), [NODE_IP, NODE_PORT, EXTERNAL_CLIENT, 40001]);
      assert.ok(received.ipChecksumValid && received.l4ChecksumValid, "checksums after reverse NAT");
      assert.equal(packets("NodePortRevNat"), 1n);
      assert.equal(packets("ForwardNetdev"), 1n);
    });

    it(`${name} to a remote backend: tunneled, the reply over the underlay restored by from-netdev`, () => {
      reconcileMaps(datapath.maps, state([nodePort(proto, [REMOTE_POD])]));
      const before = datapath.maps.readTrace().txCount;
      const forward = run(
        ProgramName.fromNetdev,
        buildPacket({ saddr: EXTERNAL_CLIENT, daddr: NODE_IP, proto, sport: 40002, dport: NODE_PORT }),
      );
      assert.equal(forward.returnValue, TC_ACT_REDIRECT);
      const sent = parsePacket(forward.data);
      assert.deepEqual([sent.saddr, sent.daddr, sent.dport], [NODE_IP, REMOTE_POD, 8080]);
      assert.ok(sent.ipChecksumValid && sent.l4ChecksumValid);
      const trace = datapath.maps.readTrace();
      assert.equal(trace.txCount, before + 1);
      assert.equal(trace.txRemoteIp, REMOTE_NODE, "the backend's node from the ipcache");
      assert.equal(trace.txTunnelId, WORLD_IDENTITY, "an outside client is world");
      assert.equal(packets("ForwardTunnel"), 1n);

      const reply = buildPacket({ saddr: REMOTE_POD, daddr: NODE_IP, proto, sport: 8080, dport: sent.sport });
      const back = run(ProgramName.fromNetdev, reply);
      assert.equal(back.returnValue, TC_ACT_REDIRECT);
      assert.deepEqual(tuple(back.data), [NODE_IP, NODE_PORT, EXTERNAL_CLIENT, 40002]);
      const received = parsePacket(back.data);
      assert.ok(received.ipChecksumValid && received.l4ChecksumValid);
    });
  }

  it("gives concurrent flows of one client port distinct SNAT ports", () => {
    reconcileMaps(datapath.maps, state([nodePort(Proto.TCP, [LOCAL_POD])]));
    const ports = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const client = `172.20.1.${i + 1}`;
      const out = parsePacket(
        run(
          ProgramName.fromNetdev,
          buildPacket({ saddr: client, daddr: NODE_IP, proto: Proto.TCP, sport: 40000, dport: NODE_PORT }),
        ).data,
      );
      ports.add(out.sport);
    }
    assert.equal(ports.size, 20);
  });

  it("ClientIP affinity: an outside client's new connections stick to one backend", () => {
    const backends = Array.from({ length: 8 }, (_, i) => `10.2.0.${i + 1}`);
    const connect = (client: string, sport: number) =>
      parsePacket(
        run(
          ProgramName.fromNetdev,
          buildPacket({ saddr: client, daddr: NODE_IP, proto: Proto.TCP, sport, dport: NODE_PORT }),
        ).data,
      ).daddr;
    reconcileMaps(datapath.maps, state([{ ...nodePort(Proto.TCP, backends), affinityTimeoutSeconds: 60 }]));
    const sticky = new Set(Array.from({ length: 12 }, (_, i) => connect(EXTERNAL_CLIENT, 41000 + i)));
    assert.equal(sticky.size, 1, `went to ${[...sticky]}`);
    reconcileMaps(datapath.maps, state([nodePort(Proto.TCP, backends)]));
    const spread = new Set(Array.from({ length: 24 }, (_, i) => connect(EXTERNAL_CLIENT, 42000 + i)));
    assert.ok(spread.size > 1, "without affinity new connections spread");
  });

  it("leaves everything that is not a NodePort untouched", () => {
    reconcileMaps(datapath.maps, state([nodePort(Proto.TCP, [LOCAL_POD])]));
    const untouched = [
      buildPacket({ saddr: EXTERNAL_CLIENT, daddr: NODE_IP, proto: Proto.TCP, sport: 40003, dport: 22 }),
      buildPacket({ saddr: REMOTE_NODE, daddr: NODE_IP, proto: Proto.UDP, sport: 50000, dport: 8472 }),
      // the NodePort's port on another address: transit, not ours
      buildPacket({ saddr: EXTERNAL_CLIENT, daddr: "172.20.0.7", proto: Proto.TCP, dport: NODE_PORT }),
      // the NodePort's port over UDP: no such frontend
      buildPacket({ saddr: EXTERNAL_CLIENT, daddr: NODE_IP, proto: Proto.UDP, dport: NODE_PORT }),
      // a SNAT port without a flow
      buildPacket({ saddr: REMOTE_POD, daddr: NODE_IP, proto: Proto.TCP, sport: 8080, dport: 62000 }),
      buildPacket({ saddr: EXTERNAL_CLIENT, daddr: NODE_IP, proto: 1 }),
    ];
    for (const packet of untouched) {
      const result = run(ProgramName.fromNetdev, packet);
      assert.equal(result.returnValue, TC_ACT_OK);
      assert.deepEqual(result.data, packet);
    }
    const arp = Buffer.alloc(42);
    arp.writeUInt16BE(0x0806, 12);
    assert.equal(run(ProgramName.fromNetdev, arp).returnValue, TC_ACT_OK);
    const counted = datapath.maps.readMetrics();
    for (const [reason, value] of Object.entries(counted))
      assert.equal(value.packets, 0n, `nothing counted (${reason})`);
  });

  it("drops a NodePort without backends and counts the reason", () => {
    reconcileMaps(datapath.maps, state([nodePort(Proto.TCP, [])]));
    const result = run(
      ProgramName.fromNetdev,
      buildPacket({ saddr: EXTERNAL_CLIENT, daddr: NODE_IP, proto: Proto.TCP, dport: NODE_PORT }),
    );
    assert.equal(result.returnValue, TC_ACT_SHOT);
    assert.equal(packets("DropNoBackend"), 1n);
  });

  it("tunnel egress: sets the key for the node's own traffic from the ipcache (host identity)", () => {
    reconcileMaps(datapath.maps, state([]));
    const before = datapath.maps.readTrace().txCount;
    const packet = buildPacket({
      saddr: NODE_IP,
      daddr: REMOTE_POD,
      proto: Proto.TCP,
      sport: 45000,
      dport: 8080,
    });
    const result = run(ProgramName.tunnelEgress, packet);
    assert.equal(result.returnValue, TC_ACT_OK, "the device encapsulates with the key");
    assert.deepEqual(result.data, packet, "the packet itself is not changed");
    const trace = datapath.maps.readTrace();
    assert.equal(trace.txCount, before + 1);
    assert.equal(trace.txRemoteIp, REMOTE_NODE);
    assert.equal(trace.txTunnelId, HOST_IDENTITY);
    assert.equal(packets("TunnelHostTx"), 1n);

    // a local pod's packet the kernel routed here (not redirected by from-pod) keeps its identity
    run(ProgramName.tunnelEgress, buildPacket({ saddr: LOCAL_POD, daddr: REMOTE_POD, proto: 1 }));
    assert.equal(datapath.maps.readTrace().txTunnelId, LOCAL_POD_IDENTITY);
  });

  it("tunnel egress: drops a destination the ipcache cannot tunnel and counts the reason", () => {
    reconcileMaps(datapath.maps, state([]));
    for (const daddr of ["192.0.2.1", REMOTE_NODE /* known, but reached over the underlay */]) {
      const result = run(ProgramName.tunnelEgress, buildPacket({ saddr: NODE_IP, daddr, proto: Proto.UDP }));
      assert.equal(result.returnValue, TC_ACT_SHOT, daddr);
    }
    assert.equal(packets("DropNoTunnelEndpoint"), 2n);
  });
});
