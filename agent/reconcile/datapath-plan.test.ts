import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1EndpointSlice, V1Service } from "@kubernetes/client-node";
import type { MeshEndpoint } from "../../lib/api/crds.js";
import { type NodeDatapathInputs, planNodeDatapath } from "./datapath-plan.js";

const service: V1Service = {
  metadata: { name: "echo", namespace: "default" },
  spec: { clusterIP: "10.96.0.10", ports: [{ name: "http", port: 80, protocol: "TCP" }] },
};
const slice: V1EndpointSlice = {
  metadata: { name: "echo-1", namespace: "default", labels: { "kubernetes.io/service-name": "echo" } },
  addressType: "IPv4",
  endpoints: [{ addresses: ["10.244.2.5"], conditions: { ready: true } }],
  ports: [{ name: "http", port: 8080, protocol: "TCP" }],
};
const remotePod: MeshEndpoint = {
  apiVersion: "clustermesh.io/v1alpha1",
  kind: "MeshEndpoint",
  metadata: { name: "p", namespace: "default" },
  status: {
    id: "lxc1",
    containerID: "c",
    identity: { id: 70001, labels: [] },
    networking: { addressing: [{ ipv4: "10.244.2.5" }], node: "172.18.0.3" },
    namedPorts: [],
    state: "ready",
  },
};

function inputs(encrypt: boolean): NodeDatapathInputs {
  return {
    nodeName: "n1",
    nodeIp: "172.18.0.2",
    nodes: [
      { name: "n1", internalIp: "172.18.0.2", podCidrs: ["10.244.1.0/24"] },
      { name: "n2", internalIp: "172.18.0.3", podCidrs: ["10.244.2.0/24"] },
    ],
    endpoints: [],
    services: [service],
    endpointSlices: [slice],
    meshEndpoints: [remotePod],
    mesh: undefined,
    encrypt,
    onProblem: (problem) => assert.fail(`unexpected problem ${problem.object}: ${problem.message}`),
  };
}

describe("the node's datapath plan", () => {
  it("without encryption: remote pods through the tunnel, a route per remote pod CIDR", () => {
    const plan = planNodeDatapath(inputs(false));
    assert.ok(plan.maps.services.some((s) => s.frontend.address === "10.96.0.10" && s.backends.length === 1));
    const pod = plan.maps.ipcache.find((e) => e.prefix === "10.244.2.5/32");
    assert.equal(pod?.tunnelEndpoint, "172.18.0.3");
    assert.deepEqual(
      plan.tunnelRoutes.map((r) => r.cidr),
      ["10.244.2.0/24"],
    );
  });

  it("with encryption: no tunnel endpoint and no tunnel route (traffic goes through the kernel's encrypting routes)", () => {
    const plan = planNodeDatapath(inputs(true));
    assert.ok(plan.maps.ipcache.length > 0);
    assert.ok(plan.maps.ipcache.every((e) => e.tunnelEndpoint === undefined));
    assert.deepEqual(plan.tunnelRoutes, []);
  });
});
