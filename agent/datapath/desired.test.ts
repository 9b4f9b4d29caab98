import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { MeshEndpoint } from "../../lib/api/crds.js";
import type { EndpointRecord } from "../endpoints/store.js";
import {
  desiredDatapath,
  knownAddressPredicate,
  nodeInfo,
  remotePods,
  tunnelMac,
  tunnelRoutes,
} from "./desired.js";

const nodes = [
  { name: "n1", internalIp: "172.18.0.2", podCidrs: ["10.244.1.0/24"] },
  { name: "n2", internalIp: "172.18.0.3", podCidrs: ["10.244.2.0/24"] },
  { name: "n3", internalIp: undefined, podCidrs: ["10.244.3.0/24"] },
];

const record = (ip: string, ifindex?: number): EndpointRecord => ({
  id: "lxc0123456789a",
  containerId: "c",
  ifname: "eth0",
  netns: "/run/netns/p",
  podNamespace: "d",
  podName: "p",
  ip,
  hostMac: "02:00:00:00:00:01",
  podMac: "0a:00:00:00:00:01",
  ifindex,
  identity: 70000,
  labels: [],
  namedPorts: [],
  state: "ready",
  createdAt: "",
});

const meshEndpoint = (ip: string, node: string, id: number): MeshEndpoint => ({
  apiVersion: "clustermesh.io/v1alpha1",
  kind: "MeshEndpoint",
  metadata: { name: ip, namespace: "d" },
  status: {
    id: "x",
    containerID: "c",
    identity: { id, labels: [] },
    networking: { addressing: [{ ipv4: ip }], node },
    namedPorts: [],
    state: "ready",
  },
});

describe("desired datapath", () => {
  it("reads Node objects", () => {
    assert.deepEqual(
      nodeInfo({
        metadata: { name: "n" },
        spec: { podCIDR: "10.0.0.0/24" },
        status: { addresses: [{ type: "InternalIP", address: "1.2.3.4" }] },
      }),
      { name: "n", internalIp: "1.2.3.4", podCidrs: ["10.0.0.0/24"] },
    );
  });

  it("local endpoints, remote nodes' CIDRs and remote pods with their tunnel endpoint", () => {
    const remote = remotePods(
      [
        meshEndpoint("10.244.2.5", "172.18.0.3", 70001),
        meshEndpoint("10.244.1.9", "172.18.0.2", 1),
        meshEndpoint("10.9.9.9", "172.99.0.1", 5),
      ],
      "172.18.0.2",
    );
    const state = desiredDatapath({
      localNode: "n1",
      nodes,
      endpoints: [record("10.244.1.7", 12), record("10.244.1.8")],
      services: [],
      remotePods: remote,
    });
    assert.deepEqual(
      state.endpoints.map((e) => e.address),
      ["10.244.1.7"],
      "an endpoint without a link yet is not programmed",
    );
    assert.deepEqual(
      state.remoteNodes.map((n) => n.nodeIp),
      ["172.18.0.3"],
    );
    assert.deepEqual(state.ipcache, [
      { prefix: "10.244.1.7/32", identity: 70000 },
      { prefix: "10.244.1.8/32", identity: 70000 },
      { prefix: "10.244.2.5/32", identity: 70001, tunnelEndpoint: "172.18.0.3" },
    ]);
  });

  it("tunnel routes and deterministic VTEP MACs", () => {
    assert.equal(tunnelMac("172.18.0.3"), "02:4d:ac:12:00:03");
    assert.deepEqual(tunnelRoutes("n1", nodes), [
      { cidr: "10.244.2.0/24", via: "10.244.2.0", mac: "02:4d:ac:12:00:03", nodeIp: "172.18.0.3" },
    ]);
  });

  it("known backend addresses: pod CIDRs and node IPs", () => {
    const known = knownAddressPredicate(nodes);
    assert.ok(known("10.244.3.4"));
    assert.ok(known("172.18.0.2"));
    assert.ok(!known("192.168.1.1"));
  });
});
