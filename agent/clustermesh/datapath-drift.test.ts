import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type {
  Backend,
  EndpointInfo,
  EndpointKey,
  IpcacheKey,
  IpcacheValue,
  ServiceKey,
  ServiceValue,
} from "../../bpf/datapath/codecs.js";
import { Proto } from "../../bpf/datapath/codecs.js";
import {
  type CurrentDatapathState,
  type DesiredDatapathState,
  reconcileDatapath,
} from "../../bpf/datapath/reconcile.js";
import { AddressOwners, ipv4Number, meshDatapathDrift, type RemoteNodeAddresses } from "./datapath-drift.js";

const NODES: RemoteNodeAddresses[] = [
  { cluster: "c2", nodeIp: "172.18.1.2", podCidrs: ["10.2.1.0/24"] },
  { cluster: "c2", nodeIp: "172.18.1.3", podCidrs: ["10.2.2.0/24"] },
  { cluster: "c3", nodeIp: "172.18.2.2", podCidrs: ["10.3.1.0/24"] },
];

/** What the datapath loop would write: one local pod, c2's and c3's nodes and pods, a global service. */
const DESIRED: DesiredDatapathState = {
  endpoints: [],
  remoteNodes: NODES.map((n) => ({
    nodeIp: n.nodeIp,
    podCidrs: [...n.podCidrs],
    nodeIdentity: 6,
    podCidrIdentity: 2,
    remoteCluster: true,
  })),
  ipcache: [
    { prefix: "10.1.0.5/32", identity: 300 },
    { prefix: "10.2.1.7/32", identity: 70001, tunnelEndpoint: "172.18.1.2", remoteCluster: true },
    { prefix: "10.2.2.8/32", identity: 70002, tunnelEndpoint: "172.18.1.3", remoteCluster: true },
    { prefix: "10.3.1.9/32", identity: 80001, tunnelEndpoint: "172.18.2.2", remoteCluster: true },
  ],
  services: [
    {
      frontend: { address: "10.96.0.10", port: 80, proto: Proto.TCP },
      backends: [
        { address: "10.1.0.5", port: 8080 },
        { address: "10.2.1.7", port: 8080 },
        { address: "10.3.1.9", port: 8080 },
      ],
    },
  ],
};

/** The maps after the reconciler's ops, as read back. */
function programmed(desired: DesiredDatapathState): {
  services: Map<string, [ServiceKey, ServiceValue]>;
  backends: Map<number, Backend>;
  ipcache: Map<string, [IpcacheKey, IpcacheValue]>;
  state(): CurrentDatapathState;
} {
  const services = new Map<string, [ServiceKey, ServiceValue]>();
  const backends = new Map<number, Backend>();
  const revNat = new Map<number, { address: string; port: number }>();
  const ipcache = new Map<string, [IpcacheKey, IpcacheValue]>();
  const endpoints: [EndpointKey, EndpointInfo][] = [];
  const serviceId = (k: ServiceKey) => `${k.address}|${k.port}|${k.proto}|${k.backendSlot}`;
  const state = (): CurrentDatapathState => ({
    services: [...services.values()],
    backends,
    revNat,
    endpoints,
    ipcache: [...ipcache.values()],
  });
  for (const op of reconcileDatapath(desired, state())) {
    if (op.map === "services" && op.op === "set") services.set(serviceId(op.key), [op.key, op.value]);
    if (op.map === "backends" && op.op === "set") backends.set(op.key, op.value);
    if (op.map === "revNat" && op.op === "set") revNat.set(op.key, op.value);
    if (op.map === "ipcache" && op.op === "set") ipcache.set(op.key.prefix, [op.key, op.value]);
  }
  return { services, backends, ipcache, state };
}

const drift = (current: CurrentDatapathState, clusters = ["c2", "c3"]) =>
  meshDatapathDrift({ clusters, nodes: NODES, expected: DESIRED, current });

describe("meshDatapathDrift (published versus programmed, per remote cluster)", () => {
  it("maps that hold what was published: equal counts, no drift", () => {
    const result = drift(programmed(DESIRED).state());
    assert.deepEqual(result.clusters.get("c2"), {
      published: { nodes: 2, ipcache: 6, identities: 2, services: 1, backends: 1 },
      programmed: { nodes: 2, ipcache: 6, identities: 2, services: 1, backends: 1 },
      drift: { missing: 0, extra: 0, different: 0, sample: [] },
    });
    assert.deepEqual(result.clusters.get("c3")?.published, {
      nodes: 1,
      ipcache: 3,
      identities: 1,
      services: 1,
      backends: 1,
    });
    assert.deepEqual(result.unowned, { count: 0, sample: [] });
  });

  it("an ipcache entry deleted from the map is missing, names the entry and only its cluster drifts", () => {
    const maps = programmed(DESIRED);
    maps.ipcache.delete("10.2.1.7/32");
    const result = drift(maps.state());
    const c2 = result.clusters.get("c2");
    assert.equal(c2?.programmed.ipcache, 5);
    assert.equal(c2?.programmed.identities, 1);
    assert.equal(c2?.programmed.nodes, 2, "the node's own entries are all there");
    assert.deepEqual(c2?.drift, {
      missing: 1,
      extra: 0,
      different: 0,
      sample: [
        {
          kind: "ipcache",
          entry: "10.2.1.7/32",
          problem: "missing",
          detail: "identity 70001 via 172.18.1.2",
        },
      ],
    });
    assert.equal(result.clusters.get("c3")?.drift.missing, 0);
  });

  it("a node whose pod CIDR entry is gone is not programmed", () => {
    const maps = programmed(DESIRED);
    maps.ipcache.delete("10.2.2.0/24");
    assert.equal(drift(maps.state()).clusters.get("c2")?.programmed.nodes, 1);
  });

  it("a changed identity is different, an unpublished remote entry extra, one of no cluster unowned", () => {
    const maps = programmed(DESIRED);
    maps.ipcache.set("10.2.2.8/32", [
      { prefix: "10.2.2.8/32", clusterId: 0 },
      { identity: 70099, tunnelEndpoint: "172.18.1.3", remoteCluster: true },
    ]);
    maps.ipcache.set("10.2.1.99/32", [
      { prefix: "10.2.1.99/32", clusterId: 0 },
      { identity: 70003, tunnelEndpoint: "172.18.1.2", remoteCluster: true },
    ]);
    maps.ipcache.set("10.9.0.1/32", [
      { prefix: "10.9.0.1/32", clusterId: 0 },
      { identity: 90001, tunnelEndpoint: "172.18.9.9", remoteCluster: true },
    ]);
    const result = drift(maps.state());
    const c2 = result.clusters.get("c2");
    assert.deepEqual(
      c2?.drift.sample.map((e) => [e.problem, e.entry]),
      [
        ["different", "10.2.2.8/32"],
        ["extra", "10.2.1.99/32"],
      ],
    );
    assert.match(
      c2?.drift.sample[0].detail ?? "",
      /identity 70099 .* in the map, identity 70002 .* published/,
    );
    assert.deepEqual(result.unowned, {
      count: 1,
      sample: [
        { kind: "ipcache", entry: "10.9.0.1/32", problem: "extra", detail: "identity 90001 via 172.18.9.9" },
      ],
    });
  });

  it("a backend slot dropped from a global service is a missing frontend → backend pair of its cluster", () => {
    const maps = programmed(DESIRED);
    const c3Id = [...maps.backends].find(([, b]) => b.address === "10.3.1.9")?.[0];
    maps.backends.delete(c3Id as number);
    const result = drift(maps.state());
    assert.deepEqual(result.clusters.get("c3")?.drift.sample, [
      { kind: "backends", entry: "10.96.0.10:80/TCP -> 10.3.1.9:8080", problem: "missing" },
    ]);
    assert.equal(result.clusters.get("c3")?.programmed.services, 0);
    assert.equal(result.clusters.get("c2")?.drift.missing, 0);
  });

  it("a disconnected cluster's entries are unowned, not drift of the others", () => {
    const result = meshDatapathDrift({
      clusters: ["c2"],
      nodes: NODES.filter((n) => n.cluster === "c2"),
      expected: DESIRED,
      current: programmed(DESIRED).state(),
    });
    assert.equal(result.clusters.get("c2")?.drift.extra, 0);
    assert.equal(result.unowned.count, 3);
  });

  it("samples at most five entries, missing ones first", () => {
    const result = drift(programmed({ ...DESIRED, ipcache: [], remoteNodes: [] }).state());
    const c2 = result.clusters.get("c2");
    assert.equal(c2?.drift.missing, 6);
    assert.equal(c2?.drift.sample.length, 5);
    assert.ok(c2?.drift.sample.every((e) => e.problem === "missing"));
  });

  it("AddressOwners finds node IPs and addresses inside pod CIDRs", () => {
    const owners = new AddressOwners(NODES);
    assert.equal(owners.of("172.18.2.2"), "c3");
    assert.equal(owners.of("10.2.2.200"), "c2");
    assert.equal(owners.of("10.2.3.1"), undefined);
    assert.equal(owners.of("fd00::1"), undefined);
    assert.equal(owners.of("172.18.1.3/32"), "c2");
  });

  it("ipv4Number parses dotted quads (also the address of a prefix) and nothing else", () => {
    assert.equal(ipv4Number("10.2.1.7"), 0x0a020107);
    assert.equal(ipv4Number("255.255.255.255/32"), 0xffffffff);
    for (const bad of ["10.2.1", "10.2.1.256", "10..1.2", "1.2.3.4.5", "fd00::1", "", "a.b.c.d"])
      assert.equal(ipv4Number(bad), undefined, bad);
  });
});
