import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NODE_LABEL } from "../../lib/api/crds.js";
import type { EndpointRecord } from "../endpoints/store.js";
import { meshEndpointFor, planEndpointSync } from "./publisher.js";

const record = (name: string, ip: string): EndpointRecord => ({
  id: `lxc${name}`,
  containerId: name,
  ifname: "eth0",
  netns: "/run/netns/x",
  podNamespace: "d",
  podName: name,
  podUid: `uid-${name}`,
  ip,
  hostMac: "02:00:00:00:00:01",
  podMac: "0a:00:00:00:00:01",
  ifindex: 3,
  identity: 70000,
  labels: ["k8s:app=x"],
  namedPorts: [{ name: "http", port: 8080, protocol: "TCP" }],
  state: "ready",
  createdAt: "",
});

describe("MeshEndpoint sync plan", () => {
  it("shapes a MeshEndpoint like a CiliumEndpoint", () => {
    const endpoint = meshEndpointFor(record("a", "10.0.0.2"), "n1", "172.18.0.2");
    assert.equal(endpoint.metadata.labels?.[NODE_LABEL], "n1");
    assert.deepEqual(endpoint.status.networking, { addressing: [{ ipv4: "10.0.0.2" }], node: "172.18.0.2" });
    assert.equal(endpoint.status.identity.id, 70000);
    assert.equal(endpoint.metadata.ownerReferences?.[0].uid, "uid-a");
    assert.equal(endpoint.status.encryption, undefined);
    // with IPsec the node's key index goes along, as in Cilium's CiliumEndpoint status
    assert.deepEqual(meshEndpointFor(record("a", "10.0.0.2"), "n1", "172.18.0.2", 3).status.encryption, {
      key: 3,
    });
  });

  it("creates, updates and removes only this node's objects", () => {
    const a = meshEndpointFor(record("a", "10.0.0.2"), "n1", "172.18.0.2");
    const b = meshEndpointFor(record("b", "10.0.0.3"), "n1", "172.18.0.2");
    const staleOwn = meshEndpointFor(record("c", "10.0.0.4"), "n1", "172.18.0.2");
    const otherNodes = meshEndpointFor(record("z", "10.0.1.4"), "n2", "172.18.0.3");
    const changedB = { ...b, status: { ...b.status, identity: { id: 1, labels: [] } } };
    const plan = planEndpointSync([a, b], [a, changedB, staleOwn, otherNodes], "n1");
    assert.deepEqual(
      plan.upsert.map((u) => u.desired.metadata.name),
      ["b"],
    );
    assert.deepEqual(
      plan.remove.map((e) => e.metadata.name),
      ["c"],
    );
  });
});
