// BPF_PROG_TEST_RUN tests of the datapath programs with crafted packets (root, no namespaces).
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import { mountPrivateBpffs, type PrivateBpffs } from "../testing.js";
import { reconcileMaps } from "./apply.js";
import { ConfigFlags, CtDirection, type Metric, Proto } from "./codecs.js";
import { Datapath, ProgramName } from "./loader.js";
import { buildPacket, parsePacket, TcpFlag } from "./packet.js";
import type { DesiredDatapathState, DesiredService } from "./reconcile.js";

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;

const CLIENT = "10.1.0.10";
const LOCAL_POD = "10.1.0.20";
const REMOTE_NODE = "172.20.0.2";
const REMOTE_POD = "10.2.0.10";
const VIP = "10.96.0.10";
const CLIENT_IDENTITY = 4242;
const TUNNEL_IFINDEX = 77;

const CLIENT6 = "fd00:1::10";
const LOCAL_POD6 = "fd00:1::20";
const REMOTE_POD6 = "fd00:2::10";
const VIP6 = "fd00:96::10";
const BACKEND6 = "fd00:3::1";

const localEndpoints = [
  {
    address: CLIENT6,
    ifindex: 11,
    identity: CLIENT_IDENTITY,
    mac: "02:aa:00:00:00:10",
    nodeMac: "02:bb:00:00:00:10",
  },
  {
    address: LOCAL_POD6,
    ifindex: 12,
    identity: 5000,
    mac: "02:aa:00:00:00:20",
    nodeMac: "02:bb:00:00:00:20",
  },
  {
    address: CLIENT,
    ifindex: 11,
    identity: CLIENT_IDENTITY,
    mac: "02:aa:00:00:00:10",
    nodeMac: "02:bb:00:00:00:10",
  },
  { address: LOCAL_POD, ifindex: 12, identity: 5000, mac: "02:aa:00:00:00:20", nodeMac: "02:bb:00:00:00:20" },
];
const remoteNodes = [
  {
    nodeIp: REMOTE_NODE,
    podCidrs: ["10.2.0.0/24", "fd00:2::/64"],
    nodeIdentity: 6,
    podCidrIdentity: 2,
    remoteCluster: true,
  },
];

function service(port: number, proto: number, backends: string[]): DesiredService {
  return {
    frontend: { address: VIP, port, proto },
    backends: backends.map((address) => ({ address, port: 8080 })),
  };
}

describe("datapath programs under BPF_PROG_TEST_RUN", () => {
  let bpffs: PrivateBpffs;
  let datapath: Datapath;

  const state = (services: DesiredService[]): DesiredDatapathState => ({
    services,
    endpoints: localEndpoints,
    remoteNodes,
    ipcache: [],
  });
  const run = (program: string, data: Buffer) => datapath.program(program).testRun({ data });
  const packets = (metric: keyof typeof Metric) => datapath.maps.readMetrics()[metric].packets;

  before(() => {
    bpffs = mountPrivateBpffs();
    datapath = Datapath.load({ pinRoot: `${bpffs.path}/node` });
    datapath.maps.setConfig({ tunnelIfindex: TUNNEL_IFINDEX, flags: ConfigFlags.Trace, worldIdentity: 2 });
  });
  after(() => {
    datapath?.close();
    bpffs?.cleanup();
  });
  beforeEach(() => {
    datapath.maps.resetMetrics();
    for (const key of [...datapath.maps.conntrack.keys()]) datapath.maps.conntrack.delete(key);
  });

  for (const proto of [Proto.TCP, Proto.UDP]) {
    const name = proto === Proto.TCP ? "TCP" : "UDP";
    it(`DNATs ${name} to a VIP to a backend with valid checksums, and reverse-NATs the reply`, () => {
      reconcileMaps(datapath.maps, state([service(80, proto, ["10.3.0.1"])]));
      const request = buildPacket({ saddr: CLIENT, daddr: VIP, proto, sport: 40001, dport: 80 });
      const forward = run(ProgramName.fromPod, request);
      assert.equal(forward.returnValue, TC_ACT_OK, "unknown backend address: handed to the kernel's routing");
      const sent = parsePacket(forward.data);
      assert.deepEqual([sent.saddr, sent.sport, sent.daddr, sent.dport], [CLIENT, 40001, "10.3.0.1", 8080]);
      assert.ok(sent.ipChecksumValid, "IP checksum");
      assert.ok(sent.l4ChecksumValid, `${name} checksum`);
      assert.equal(packets("LbDnat"), 1n);

      const reply = buildPacket({ saddr: "10.3.0.1", daddr: CLIENT, proto, sport: 8080, dport: 40001 });
      const back = run(ProgramName.toPod, reply);
      assert.equal(back.returnValue, TC_ACT_OK);
      const received = parsePacket(back.data);
      assert.deepEqual(
        [received.saddr, received.sport, received.daddr, received.dport],
        [VIP, 80, CLIENT, 40001],
      );
      assert.ok(received.ipChecksumValid && received.l4ChecksumValid, "checksums after reverse NAT");
      assert.equal(packets("LbRevNat"), 1n);
    });
  }

  for (const proto of [Proto.TCP, Proto.UDP]) {
    const name = proto === Proto.TCP ? "TCP" : "UDP";
    it(`IPv6: DNATs ${name} to a VIP with a valid checksum, and reverse-NATs the reply`, () => {
      reconcileMaps(
        datapath.maps,
        state([
          { frontend: { address: VIP6, port: 80, proto }, backends: [{ address: BACKEND6, port: 8080 }] },
        ]),
      );
      const sent = parsePacket(
        run(ProgramName.fromPod, buildPacket({ saddr: CLIENT6, daddr: VIP6, proto, sport: 40001, dport: 80 }))
          .data,
      );
      assert.deepEqual([sent.saddr, sent.sport, sent.daddr, sent.dport], [CLIENT6, 40001, BACKEND6, 8080]);
      assert.ok(sent.l4ChecksumValid, `${name} checksum over the IPv6 pseudo-header`);
      const back = run(
        ProgramName.toPod,
        buildPacket({ saddr: BACKEND6, daddr: CLIENT6, proto, sport: 8080, dport: 40001 }),
      );
      const received = parsePacket(back.data);
      assert.deepEqual(
        [received.saddr, received.sport, received.daddr, received.dport],
        [VIP6, 80, CLIENT6, 40001],
      );
      assert.ok(received.l4ChecksumValid, "checksum after reverse NAT");
    });
  }

  it("IPv6: redirects to a local endpoint and tunnels to a remote pod CIDR", () => {
    reconcileMaps(datapath.maps, state([]));
    const local = run(
      ProgramName.fromPod,
      buildPacket({ saddr: CLIENT6, daddr: LOCAL_POD6, proto: Proto.UDP, dport: 9 }),
    );
    assert.equal(local.returnValue, TC_ACT_REDIRECT);
    assert.equal(parsePacket(local.data).dstMac, "02:aa:00:00:00:20");
    const remote = run(
      ProgramName.fromPod,
      buildPacket({ saddr: CLIENT6, daddr: REMOTE_POD6, proto: Proto.TCP, dport: 9 }),
    );
    assert.equal(remote.returnValue, TC_ACT_REDIRECT);
    const trace = datapath.maps.readTrace();
    assert.equal(trace.txTunnelId, CLIENT_IDENTITY);
    assert.equal(trace.txRemoteIp, REMOTE_NODE, "an IPv4 underlay carries the IPv6 pod traffic");
  });

  it("keeps a zero UDP checksum zero through DNAT", () => {
    reconcileMaps(datapath.maps, state([service(53, Proto.UDP, ["10.3.0.1"])]));
    const request = buildPacket({
      saddr: CLIENT,
      daddr: VIP,
      proto: Proto.UDP,
      sport: 40002,
      dport: 53,
      noUdpChecksum: true,
    });
    const sent = parsePacket(run(ProgramName.fromPod, request).data);
    assert.equal(sent.daddr, "10.3.0.1");
    assert.equal(sent.l4Checksum, 0);
    assert.ok(sent.ipChecksumValid);
  });

  it("leaves replies of flows it did not NAT untouched", () => {
    const reply = buildPacket({
      saddr: "10.3.0.99",
      daddr: CLIENT,
      proto: Proto.TCP,
      sport: 8080,
      dport: 1234,
    });
    const result = run(ProgramName.toPod, reply);
    assert.equal(result.returnValue, TC_ACT_OK);
    assert.deepEqual(result.data, reply);
  });

  it("a direct connection's SYN clears the reply entry an earlier per-packet flow left on its tuple", () => {
    reconcileMaps(datapath.maps, state([service(80, Proto.TCP, ["10.3.0.1"])]));
    const viaVip = (flags: number) =>
      run(ProgramName.fromPod, buildPacket({ ...flowSpec(41000), tcpFlags: flags }));
    const direct = (flags: number) =>
      run(
        ProgramName.fromPod,
        buildPacket({
          saddr: CLIENT,
          daddr: "10.3.0.1",
          proto: Proto.TCP,
          sport: 41000,
          dport: 8080,
          tcpFlags: flags,
        }),
      );
    const replySource = () => {
      const reply = buildPacket({
        saddr: "10.3.0.1",
        daddr: CLIENT,
        proto: Proto.TCP,
        sport: 8080,
        dport: 41000,
      });
      const received = parsePacket(run(ProgramName.toPod, reply).data);
      return `${received.saddr}:${received.sport}`;
    };
    viaVip(TcpFlag.SYN);
    assert.equal(replySource(), `${VIP}:80`, "the per-packet flow's replies come from the VIP");
    // segments of a connection that is already open (ACK set) leave the entry alone
    direct(TcpFlag.ACK);
    direct(TcpFlag.SYN | TcpFlag.ACK);
    assert.equal(replySource(), `${VIP}:80`);
    // the client port comes round again for a direct connection to that backend
    direct(TcpFlag.SYN);
    assert.equal(replySource(), "10.3.0.1:8080", "a direct connection's replies were rewritten");
  });

  it("forgets a UDP reply entry silent for longer than the non-TCP lifetime (60 s)", () => {
    reconcileMaps(datapath.maps, state([service(53, Proto.UDP, ["10.3.0.1"])]));
    run(
      ProgramName.fromPod,
      buildPacket({ saddr: CLIENT, daddr: VIP, proto: Proto.UDP, sport: 41001, dport: 53 }),
    );
    const reply = () =>
      parsePacket(
        run(
          ProgramName.toPod,
          buildPacket({ saddr: "10.3.0.1", daddr: CLIENT, proto: Proto.UDP, sport: 8080, dport: 41001 }),
        ).data,
      ).saddr;
    assert.equal(reply(), VIP);
    const [key] = [...datapath.maps.conntrack.keys()].filter((k) => k.direction === CtDirection.Reply);
    const entry = datapath.maps.conntrack.get(key);
    assert.ok(entry);
    datapath.maps.conntrack.set(key, { ...entry, lastSeenNs: entry.lastSeenNs - 61_000_000_000n });
    assert.equal(reply(), "10.3.0.1", "a stale UDP entry still rewrote the reply");
    assert.equal(datapath.maps.conntrack.get(key), undefined, "the stale entry was not removed");
  });

  it("keeps a flow on its backend while the backend set changes, and re-balances when it goes", () => {
    const initial = ["10.3.0.1", "10.3.0.2"];
    reconcileMaps(datapath.maps, state([service(80, Proto.TCP, initial)]));
    const flow = buildPacket({ saddr: CLIENT, daddr: VIP, proto: Proto.TCP, sport: 45000, dport: 80 });
    const chosen = parsePacket(run(ProgramName.fromPod, flow).data).daddr;
    assert.ok(initial.includes(chosen));

    const others = Array.from({ length: 30 }, (_, i) => `10.4.0.${i + 1}`);
    reconcileMaps(datapath.maps, state([service(80, Proto.TCP, [...others, chosen])]));
    for (let i = 0; i < 25; i++) {
      assert.equal(parsePacket(run(ProgramName.fromPod, flow).data).daddr, chosen, `packet ${i} stayed`);
    }
    assert.equal(packets("CtHit"), 25n);
    // new flows spread over the new set
    const seen = new Set<string>();
    for (let port = 50000; port < 50040; port++) {
      seen.add(parsePacket(run(ProgramName.fromPod, buildPacket({ ...flowSpec(port) })).data).daddr);
    }
    assert.ok(seen.size > 5, `new flows use many backends (saw ${seen.size})`);

    reconcileMaps(datapath.maps, state([service(80, Proto.TCP, others)]));
    const moved = parsePacket(run(ProgramName.fromPod, flow).data).daddr;
    assert.ok(others.includes(moved), "the flow moved to a remaining backend once its own was removed");
  });

  it("never follows a conntrack entry to a backend id that was reused for another service", () => {
    reconcileMaps(datapath.maps, state([]));
    reconcileMaps(datapath.maps, state([service(80, Proto.TCP, ["10.3.0.1"])]));
    const flow = buildPacket({ saddr: CLIENT, daddr: VIP, proto: Proto.TCP, sport: 46000, dport: 80 });
    assert.equal(parsePacket(run(ProgramName.fromPod, flow).data).daddr, "10.3.0.1");
    // The service goes away; its backend id is reused by another service's backend at another address.
    const other: DesiredService = {
      frontend: { address: "10.96.0.99", port: 90, proto: Proto.TCP },
      backends: [{ address: "10.9.9.9", port: 9090 }],
    };
    reconcileMaps(datapath.maps, state([]));
    reconcileMaps(datapath.maps, state([other]));
    reconcileMaps(datapath.maps, state([other, service(80, Proto.TCP, ["10.3.0.2"])]));
    // The old flow's tuple comes back (a client reusing its source port): it goes to this service's backend.
    assert.equal(parsePacket(run(ProgramName.fromPod, flow).data).daddr, "10.3.0.2");
  });

  it("drops traffic to a service without backends and counts the reason", () => {
    reconcileMaps(datapath.maps, state([service(80, Proto.TCP, [])]));
    const result = run(ProgramName.fromPod, buildPacket(flowSpec(40100)));
    assert.equal(result.returnValue, TC_ACT_SHOT);
    assert.equal(packets("DropNoBackend"), 1n);
  });

  it("tunnels to the remote node from the ipcache with the source identity as tunnel id", () => {
    reconcileMaps(datapath.maps, state([]));
    const before = datapath.maps.readTrace().txCount;
    const result = run(ProgramName.fromPod, buildPacket({ saddr: CLIENT, daddr: REMOTE_POD, proto: 1 }));
    assert.equal(result.returnValue, TC_ACT_REDIRECT);
    const trace = datapath.maps.readTrace();
    assert.equal(trace.txCount, before + 1);
    assert.equal(trace.txTunnelId, CLIENT_IDENTITY);
    assert.equal(trace.txRemoteIp, REMOTE_NODE);
    assert.equal(packets("ForwardTunnel"), 1n);
  });

  it("DNATs to a remote backend and tunnels the result in one pass", () => {
    reconcileMaps(datapath.maps, state([service(80, Proto.TCP, [REMOTE_POD])]));
    const result = run(ProgramName.fromPod, buildPacket(flowSpec(40200)));
    assert.equal(result.returnValue, TC_ACT_REDIRECT);
    assert.equal(parsePacket(result.data).daddr, REMOTE_POD);
    assert.equal(datapath.maps.readTrace().txRemoteIp, REMOTE_NODE);
  });

  it("redirects to a local endpoint with its MAC addresses", () => {
    reconcileMaps(datapath.maps, state([]));
    const result = run(
      ProgramName.fromPod,
      buildPacket({ saddr: CLIENT, daddr: LOCAL_POD, proto: Proto.UDP, dport: 9 }),
    );
    assert.equal(result.returnValue, TC_ACT_REDIRECT);
    const out = parsePacket(result.data);
    assert.equal(out.dstMac, "02:aa:00:00:00:20");
    assert.equal(out.srcMac, "02:bb:00:00:00:20");
    assert.equal(packets("ForwardLocal"), 1n);
  });

  it("hands unknown destinations to the kernel", () => {
    reconcileMaps(datapath.maps, state([]));
    const packet = buildPacket({ saddr: CLIENT, daddr: "192.0.2.1", proto: Proto.TCP, dport: 443 });
    const result = run(ProgramName.fromPod, packet);
    assert.equal(result.returnValue, TC_ACT_OK);
    assert.deepEqual(result.data, packet);
    assert.equal(packets("ForwardStack"), 1n);
  });

  it("drops malformed IPv4 packets and counts them", () => {
    const truncatedPorts = Buffer.from(buildPacket(flowSpec(40300)).subarray(0, 14 + 20 + 2));
    assert.equal(run(ProgramName.fromPod, truncatedPorts).returnValue, TC_ACT_SHOT);
    const badHeaderLength = buildPacket(flowSpec(40301));
    badHeaderLength[14] = 0x44; // IHL 4 words: shorter than an IPv4 header can be
    assert.equal(run(ProgramName.fromPod, badHeaderLength).returnValue, TC_ACT_SHOT);
    assert.equal(packets("DropInvalid"), 2n);
  });

  it("tunnel ingress drops packets that carry no tunnel key", () => {
    // test-run cannot attach tunnel metadata; identity-from-key is checked in the namespace test
    const result = run(
      ProgramName.tunnelIngress,
      buildPacket({ saddr: REMOTE_POD, daddr: CLIENT, proto: Proto.UDP }),
    );
    assert.equal(result.returnValue, TC_ACT_SHOT);
    assert.equal(packets("DropTunnelKey"), 1n);
  });
});

function flowSpec(sport: number) {
  return { saddr: CLIENT, daddr: VIP, proto: Proto.TCP, sport, dport: 80 };
}
