// Network policy enforcement under BPF_PROG_TEST_RUN: verdicts by identity, wildcards, port ranges,
// deny wins, connection tracking for replies and ICMP, drop counters by reason and by rule.
import assert from "node:assert/strict";
import { after, before, beforeEach, describe, it } from "node:test";
import type { PolicyKey, PolicyRuleRef, PolicyValue } from "../../lib/policy/types.js";
import { mountPrivateBpffs, type PrivateBpffs } from "../testing.js";
import { reconcileMaps } from "./apply.js";
import { Proto } from "./codecs.js";
import { Datapath, ProgramName } from "./loader.js";
import { buildIcmp, buildPacket, identityMarkContext, TcpFlag } from "./packet.js";
import { PolicyDir } from "./policy-codecs.js";
import { diffPolicyEntries, flattenEndpointPolicy, type PolicyMapEntries } from "./policy-entries.js";
import { PolicyMaps } from "./policy-maps.js";
import type { DesiredEndpoint } from "./reconcile.js";

const TC_ACT_OK = 0;
const TC_ACT_SHOT = 2;
const TC_ACT_REDIRECT = 7;

const SERVER = "10.1.0.20"; // the endpoint whose policy is under test
const CLIENT = "10.1.0.10"; // another local pod
const REMOTE_POD = "10.2.0.10";
const FRONTEND = 0x02_0100; // cluster 2's app=x
const OTHER = 0x02_0200;
const CLIENT_ID = 0x01_0100;
const SERVER_ID = 0x01_0200;
const REMOTE_ID = 0x02_0300;

const rule = (name: string, index = 0, direction: PolicyRuleRef["direction"] = "ingress"): PolicyRuleRef => ({
  kind: "CiliumNetworkPolicy",
  namespace: "default",
  name,
  direction,
  index,
});
const entry = (
  key: Partial<PolicyKey> & Pick<PolicyKey, "identity">,
  verdict: PolicyValue["verdict"] = "allow",
  ref = rule("allow"),
): [PolicyKey, PolicyValue] => [
  { direction: "ingress", protocol: 0, port: 0, endPort: 0, ...key },
  { verdict, rule: { ...ref, direction: key.direction ?? "ingress" } },
];

describe("network policy in the datapath (BPF_PROG_TEST_RUN)", () => {
  let bpffs: PrivateBpffs;
  let datapath: Datapath;
  let policy: PolicyMaps;
  const rules = new Map<string, number>();
  const written = new Map<number, PolicyMapEntries>();
  const ruleNumber = (ref: PolicyRuleRef) => {
    const id = `${ref.kind}/${ref.namespace}/${ref.name}/${ref.direction}/${ref.index}`;
    if (!rules.has(id)) rules.set(id, rules.size + 1);
    return rules.get(id) as number;
  };
  const endpoints: DesiredEndpoint[] = [
    {
      address: SERVER,
      ifindex: 12,
      identity: SERVER_ID,
      mac: "02:aa:00:00:00:20",
      nodeMac: "02:bb:00:00:00:20",
    },
    {
      address: CLIENT,
      ifindex: 11,
      identity: CLIENT_ID,
      mac: "02:aa:00:00:00:10",
      nodeMac: "02:bb:00:00:00:10",
    },
  ];

  /** Programs one endpoint's policy the way the agent's applier does (flatten, diff, write, flags). */
  function program(
    address: string,
    policyId: number,
    enforced: { ingress: boolean; egress: boolean },
    entries: Array<[PolicyKey, PolicyValue]>,
  ) {
    const flat = flattenEndpointPolicy({ enforced, entries }, { policyId, ruleNumber });
    assert.deepEqual(flat.rejected, []);
    const { upserts, deletes } = diffPolicyEntries(written.get(policyId) ?? new Map(), flat.entries);
    policy.write(upserts, deletes);
    written.set(policyId, flat.entries);
    const index = endpoints.findIndex((endpoint) => endpoint.address === address);
    endpoints[index] = { ...endpoints[index], policyFlags: flat.flags };
    reconcileMaps(datapath.maps, {
      services: [],
      endpoints,
      remoteNodes: [
        {
          nodeIp: "172.20.0.2",
          podCidrs: ["10.2.0.0/24"],
          nodeIdentity: 6,
          podCidrIdentity: 2,
          clusterId: 2,
        },
      ],
      ipcache: [{ prefix: `${REMOTE_POD}/32`, identity: REMOTE_ID, tunnelEndpoint: "172.20.0.2" }],
    });
  }
  const toServer = (from: number, spec: { proto?: number; sport?: number; dport?: number } = {}) =>
    datapath.program(ProgramName.toPod).testRun({
      data: buildPacket({
        saddr: REMOTE_POD,
        daddr: SERVER,
        proto: Proto.TCP,
        sport: 40000,
        dport: 80,
        ...spec,
      }),
      context: identityMarkContext(from),
    }).returnValue;
  const drops = () => datapath.maps.readMetrics().DropPolicy.packets;

  before(() => {
    bpffs = mountPrivateBpffs();
    datapath = Datapath.load({ pinRoot: `${bpffs.path}/node` });
    datapath.maps.setConfig({ tunnelIfindex: 77, flags: 0, worldIdentity: 2 });
    policy = PolicyMaps.open(`${bpffs.path}/node`);
  });
  after(() => {
    policy?.close();
    datapath?.close();
    bpffs?.cleanup();
  });
  beforeEach(() => {
    datapath.maps.resetMetrics();
    for (const key of [...policy.conntrack.keys()]) policy.conntrack.delete(key);
    for (const key of [...policy.drops.keys()]) policy.drops.delete(key);
    program(SERVER, 1, { ingress: false, egress: false }, []);
    program(CLIENT, 2, { ingress: false, egress: false }, []);
  });

  it("an endpoint no policy selects admits everything", () => {
    assert.equal(toServer(OTHER), TC_ACT_OK);
    assert.equal(drops(), 0n);
  });

  it("admits only the allowed identity on the allowed port; the rest is dropped and counted", () => {
    program(SERVER, 1, { ingress: true, egress: false }, [
      entry({ identity: FRONTEND, protocol: Proto.TCP, port: 80, endPort: 80 }),
    ]);
    assert.equal(toServer(FRONTEND), TC_ACT_OK);
    assert.equal(toServer(FRONTEND, { dport: 81, sport: 40001 }), TC_ACT_SHOT, "other port");
    assert.equal(toServer(OTHER, { sport: 40002 }), TC_ACT_SHOT, "other identity");
    assert.equal(toServer(FRONTEND, { proto: Proto.UDP, sport: 40003 }), TC_ACT_SHOT, "other protocol");
    assert.equal(drops(), 3n);
    assert.deepEqual(
      policy
        .readDrops()
        .map(({ policyId, direction, rule, packets }) => [policyId, direction, rule, packets]),
      [[1, PolicyDir.ingress, 0, 3n]],
      "default-deny drops are rule 0 of the endpoint's slot",
    );
  });

  it("deny entries act in a direction no policy enforces (default deny off): the rest passes", () => {
    program(SERVER, 1, { ingress: false, egress: false }, [
      entry({ identity: OTHER, protocol: Proto.TCP, port: 22, endPort: 22 }, "deny", rule("no-ssh")),
      entry({ identity: FRONTEND }), // an allow means nothing here
    ]);
    assert.equal(toServer(OTHER, { dport: 22 }), TC_ACT_SHOT, "denied");
    assert.equal(toServer(OTHER, { dport: 80, sport: 40001 }), TC_ACT_OK, "not denied: open");
    assert.equal(toServer(REMOTE_ID, { dport: 22, sport: 40002 }), TC_ACT_OK, "another peer");
  });

  it("identity 0, protocol 0 and port 0 are wildcards", () => {
    program(SERVER, 1, { ingress: true, egress: false }, [
      entry({ identity: 0, protocol: Proto.TCP, port: 443, endPort: 443 }),
      entry({ identity: FRONTEND, protocol: Proto.UDP, port: 0, endPort: 0 }),
      entry({ identity: REMOTE_ID }),
    ]);
    assert.equal(toServer(OTHER, { dport: 443 }), TC_ACT_OK, "any identity on tcp/443");
    assert.equal(toServer(FRONTEND, { proto: Proto.UDP, dport: 5353 }), TC_ACT_OK, "any udp port");
    assert.equal(toServer(FRONTEND, { dport: 5353 }), TC_ACT_SHOT, "not tcp");
    assert.equal(toServer(REMOTE_ID, { proto: Proto.UDP, dport: 9 }), TC_ACT_OK, "any protocol");
  });

  it("port ranges: both ends, 256-blocks inside, and nothing outside", () => {
    program(SERVER, 1, { ingress: true, egress: false }, [
      entry({ identity: FRONTEND, protocol: Proto.TCP, port: 1000, endPort: 2000 }),
    ]);
    for (const port of [1000, 1023, 1024, 1500, 1791, 1792, 2000])
      assert.equal(toServer(FRONTEND, { dport: port, sport: port }), TC_ACT_OK, `port ${port}`);
    for (const port of [999, 2001, 2047])
      assert.equal(toServer(FRONTEND, { dport: port, sport: port }), TC_ACT_SHOT, `port ${port}`);
  });

  it("deny wins over an allow, also a broader allow of the peer over a narrower deny of anyone", () => {
    const deny = rule("deny-ssh");
    program(SERVER, 1, { ingress: true, egress: false }, [
      entry({ identity: FRONTEND }),
      entry({ identity: 0, protocol: Proto.TCP, port: 22, endPort: 22 }, "deny", deny),
      entry({ identity: OTHER, protocol: Proto.TCP, port: 8080, endPort: 8080 }),
      entry({ identity: OTHER, protocol: Proto.TCP, port: 8000, endPort: 9000 }, "deny", deny),
    ]);
    assert.equal(toServer(FRONTEND, { dport: 80 }), TC_ACT_OK);
    assert.equal(
      toServer(FRONTEND, { dport: 22, sport: 40001 }),
      TC_ACT_SHOT,
      "identity 0 deny beats the peer's allow",
    );
    assert.equal(
      toServer(OTHER, { dport: 8080, sport: 40002 }),
      TC_ACT_SHOT,
      "range deny beats the port allow",
    );
    const denyNumber = ruleNumber({ ...deny, direction: "ingress" });
    assert.deepEqual(
      policy.readDrops().map(({ rule: number, packets }) => [number, packets]),
      [[denyNumber, 2n]],
      "counted against the deny rule",
    );
  });

  it("replies of an allowed connection pass both hooks; a new connection the other way does not", () => {
    program(CLIENT, 2, { ingress: true, egress: true }, [
      entry({ direction: "egress", identity: SERVER_ID, protocol: Proto.TCP, port: 80, endPort: 80 }),
    ]);
    program(SERVER, 1, { ingress: true, egress: true }, [
      entry({ identity: CLIENT_ID, protocol: Proto.TCP, port: 80, endPort: 80 }),
    ]);
    const request = buildPacket({ saddr: CLIENT, daddr: SERVER, proto: Proto.TCP, sport: 41000, dport: 80 });
    const forward = datapath.program(ProgramName.fromPod).testRun({ data: request });
    assert.equal(forward.returnValue, TC_ACT_REDIRECT, "client egress allows, redirected to the server");
    const delivered = datapath
      .program(ProgramName.toPod)
      .testRun({ data: request, context: identityMarkContext(CLIENT_ID) });
    assert.equal(delivered.returnValue, TC_ACT_OK, "server ingress allows");

    const reply = buildPacket({
      saddr: SERVER,
      daddr: CLIENT,
      proto: Proto.TCP,
      sport: 80,
      dport: 41000,
      tcpFlags: TcpFlag.SYN | TcpFlag.ACK,
    });
    assert.equal(
      datapath.program(ProgramName.fromPod).testRun({ data: reply }).returnValue,
      TC_ACT_REDIRECT,
      "server egress: a reply",
    );
    assert.equal(
      datapath.program(ProgramName.toPod).testRun({ data: reply, context: identityMarkContext(SERVER_ID) })
        .returnValue,
      TC_ACT_OK,
      "client ingress: a reply",
    );
    const reverse = buildPacket({ saddr: SERVER, daddr: CLIENT, proto: Proto.TCP, sport: 41001, dport: 80 });
    assert.equal(
      datapath.program(ProgramName.fromPod).testRun({ data: reverse }).returnValue,
      TC_ACT_SHOT,
      "server may not open connections",
    );
    assert.equal(drops(), 1n);
  });

  it("an endpoint enforcing ingress only still gets the replies of connections it opens", () => {
    program(CLIENT, 2, { ingress: true, egress: false }, []);
    const request = buildPacket({
      saddr: CLIENT,
      daddr: REMOTE_POD,
      proto: Proto.TCP,
      sport: 42000,
      dport: 8080,
    });
    assert.equal(
      datapath.program(ProgramName.fromPod).testRun({ data: request }).returnValue,
      TC_ACT_REDIRECT,
    );
    const reply = (sport: number, dport: number) =>
      datapath.program(ProgramName.toPod).testRun({
        data: buildPacket({ saddr: REMOTE_POD, daddr: CLIENT, proto: Proto.TCP, sport, dport }),
        context: identityMarkContext(REMOTE_ID),
      }).returnValue;
    assert.equal(reply(8080, 42000), TC_ACT_OK, "the reply");
    assert.equal(reply(8080, 42001), TC_ACT_SHOT, "not a reply: default deny");
  });

  it("egress to a remote pod is judged by its ipcache identity", () => {
    program(CLIENT, 2, { ingress: false, egress: true }, [
      entry({ direction: "egress", identity: REMOTE_ID, protocol: Proto.UDP, port: 53, endPort: 53 }),
    ]);
    const send = (dport: number) =>
      datapath.program(ProgramName.fromPod).testRun({
        data: buildPacket({ saddr: CLIENT, daddr: REMOTE_POD, proto: Proto.UDP, sport: 5000, dport }),
      }).returnValue;
    assert.equal(send(53), TC_ACT_REDIRECT, "tunnelled");
    assert.equal(send(54), TC_ACT_SHOT);
  });

  it("ICMP: echo replies and errors of allowed flows pass, unsolicited echo is dropped", () => {
    program(CLIENT, 2, { ingress: true, egress: true }, [
      entry({ direction: "egress", identity: 0, protocol: 1 }),
      entry({ direction: "egress", identity: 0, protocol: Proto.UDP, port: 53, endPort: 53 }),
    ]);
    const egress = (data: Buffer) => datapath.program(ProgramName.fromPod).testRun({ data }).returnValue;
    const ingress = (data: Buffer) =>
      datapath.program(ProgramName.toPod).testRun({ data, context: identityMarkContext(REMOTE_ID) })
        .returnValue;
    assert.equal(egress(buildIcmp({ saddr: CLIENT, daddr: REMOTE_POD, type: 8, id: 7 })), TC_ACT_REDIRECT);
    assert.equal(
      ingress(buildIcmp({ saddr: REMOTE_POD, daddr: CLIENT, type: 0, id: 7 })),
      TC_ACT_OK,
      "echo reply",
    );
    assert.equal(
      ingress(buildIcmp({ saddr: REMOTE_POD, daddr: CLIENT, type: 8, id: 9 })),
      TC_ACT_SHOT,
      "echo request in",
    );

    const query = buildPacket({ saddr: CLIENT, daddr: REMOTE_POD, proto: Proto.UDP, sport: 5353, dport: 53 });
    assert.equal(egress(query), TC_ACT_REDIRECT);
    // port unreachable quoting the query's IP header and first 8 bytes
    const unreachable = (sport: number) => {
      const quoted = buildPacket({ saddr: CLIENT, daddr: REMOTE_POD, proto: Proto.UDP, sport, dport: 53 });
      return buildIcmp({ saddr: REMOTE_POD, daddr: CLIENT, type: 3, body: quoted.subarray(14, 14 + 28) });
    };
    assert.equal(ingress(unreachable(5353)), TC_ACT_OK, "error about an allowed flow");
    assert.equal(ingress(unreachable(5354)), TC_ACT_SHOT, "error about no flow of ours");
  });

  it("a narrowed policy stops an established connection once the slot's revision is bumped, no scan", () => {
    // egress enforced too: the replies need the connection's entry, so the connection has one
    const allowClient = entry({ identity: CLIENT_ID, protocol: Proto.TCP, port: 80, endPort: 80 });
    program(SERVER, 1, { ingress: true, egress: true }, [allowClient]);
    const request = buildPacket({ saddr: CLIENT, daddr: SERVER, proto: Proto.TCP, sport: 43000, dport: 80 });
    const reply = buildPacket({ saddr: SERVER, daddr: CLIENT, proto: Proto.TCP, sport: 80, dport: 43000 });
    const inbound = () =>
      datapath.program(ProgramName.toPod).testRun({ data: request, context: identityMarkContext(CLIENT_ID) })
        .returnValue;
    const outbound = () => datapath.program(ProgramName.fromPod).testRun({ data: reply }).returnValue;
    assert.equal(inbound(), TC_ACT_OK);
    assert.equal(outbound(), TC_ACT_REDIRECT, "the reply rides the connection's entry");
    const [[, recorded]] = [...policy.conntrack.entries()];
    assert.equal(recorded.egress, false, "opened towards the endpoint");

    program(SERVER, 1, { ingress: true, egress: true }, []); // the client is no longer admitted
    assert.equal(inbound(), TC_ACT_OK, "the entry is of the current revision until the bump");
    policy.bumpRevisions([1]);
    assert.equal(inbound(), TC_ACT_SHOT, "judged again: denied");
    assert.equal(outbound(), TC_ACT_SHOT, "its replies too (judged as the connection was opened)");
    assert.deepEqual(
      policy.readDrops().map(({ direction, rule, packets }) => ({ direction, rule, packets })),
      [{ direction: PolicyDir.ingress, rule: 0, packets: 2n }],
    );
    assert.equal(policy.conntrack.entries().next().done, false, "the stale entry stays");

    program(SERVER, 1, { ingress: true, egress: true }, [allowClient]);
    assert.equal(inbound(), TC_ACT_OK, "widened again: the stale entry is judged, passes, is refreshed");
    policy.bumpRevisions([2]); // another endpoint's slot: this connection is not judged again
    assert.equal(outbound(), TC_ACT_REDIRECT);
    assert.equal(drops(), 2n);
  });

  it("a connection whose verdicts are cheap in both directions gets no entry: narrowing applies at once", () => {
    program(CLIENT, 2, { ingress: false, egress: true }, [
      entry({ direction: "egress", identity: REMOTE_ID, protocol: Proto.TCP, port: 80, endPort: 80 }),
    ]);
    const send = () =>
      datapath.program(ProgramName.fromPod).testRun({
        data: buildPacket({ saddr: CLIENT, daddr: REMOTE_POD, proto: Proto.TCP, sport: 44000, dport: 80 }),
      }).returnValue;
    const reply = () =>
      datapath.program(ProgramName.toPod).testRun({
        data: buildPacket({ saddr: REMOTE_POD, daddr: CLIENT, proto: Proto.TCP, sport: 80, dport: 44000 }),
        context: identityMarkContext(REMOTE_ID),
      }).returnValue;
    assert.equal(send(), TC_ACT_REDIRECT);
    assert.equal(reply(), TC_ACT_OK, "ingress has no policy: the reply passes");
    assert.equal(send(), TC_ACT_REDIRECT);
    assert.equal(policy.conntrack.entries().next().done, true, "neither packet recorded the connection");

    program(CLIENT, 2, { ingress: false, egress: true }, []);
    assert.equal(send(), TC_ACT_SHOT, "no entry to ride: the narrowed policy applies to the next packet");
  });

  it("a connection opened where no policy applies is recorded if the other direction would refuse its replies", () => {
    // egress admits the remote pod on port 80 only: a connection the remote pod opens to port 8080
    // has replies to its ephemeral port, which egress refuses; one to port 80 from port 80 would not
    program(CLIENT, 2, { ingress: false, egress: true }, [
      entry({ direction: "egress", identity: REMOTE_ID, protocol: Proto.TCP, port: 80, endPort: 80 }),
    ]);
    const inbound = buildPacket({
      saddr: REMOTE_POD,
      daddr: CLIENT,
      proto: Proto.TCP,
      sport: 45000,
      dport: 8080,
    });
    assert.equal(
      datapath.program(ProgramName.toPod).testRun({ data: inbound, context: identityMarkContext(REMOTE_ID) })
        .returnValue,
      TC_ACT_OK,
    );
    const [[, recorded]] = [...policy.conntrack.entries()];
    assert.equal(recorded.egress, false);
    const answer = buildPacket({
      saddr: CLIENT,
      daddr: REMOTE_POD,
      proto: Proto.TCP,
      sport: 8080,
      dport: 45000,
    });
    assert.equal(
      datapath.program(ProgramName.fromPod).testRun({ data: answer }).returnValue,
      TC_ACT_REDIRECT,
    );
    policy.bumpRevisions([2]);
    assert.equal(
      datapath.program(ProgramName.fromPod).testRun({ data: answer }).returnValue,
      TC_ACT_REDIRECT,
      "judged again as opened (ingress, no policy there): still allowed",
    );
    assert.equal(drops(), 0n);
  });

  it("an update rewrites only what changed", () => {
    const many = Array.from({ length: 1000 }, (_, index) => entry({ identity: 0x02_0000 + 256 + index }));
    program(SERVER, 1, { ingress: true, egress: false }, many);
    const before = written.get(1) as PolicyMapEntries;
    const next = flattenEndpointPolicy(
      {
        enforced: { ingress: true, egress: false },
        entries: [...many.slice(1), entry({ identity: 0x03_0100 })],
      },
      { policyId: 1, ruleNumber },
    );
    const diff = diffPolicyEntries(before, next.entries);
    assert.equal(diff.upserts.length, 1);
    assert.equal(diff.deletes.length, 1);
  });
});
