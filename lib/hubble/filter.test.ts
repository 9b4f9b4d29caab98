// Hubble's FlowFilter semantics on flows, and malformed filters named in the error.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compileFlowFilters, FlowFilterError, parseLabelSelector } from "./filter.js";
import type { HubbleFlow } from "./flow.js";

function flow(overrides: Partial<HubbleFlow> = {}): HubbleFlow {
  return {
    time: { seconds: "100", nanos: 0 },
    uuid: "u1",
    verdict: "DROPPED",
    drop_reason_desc: "SERVICE_BACKEND_NOT_FOUND",
    IP: { source: "10.2.0.10", destination: "10.1.0.20", ipVersion: "IPv4" },
    l4: { TCP: { source_port: 40001, destination_port: 80, flags: { SYN: true } } },
    source: {
      identity: 0x20001,
      cluster_name: "c2",
      namespace: "demo",
      pod_name: "client-abc",
      labels: ["k8s:app=client", "k8s:io.cilium.k8s.policy.cluster=c2"],
    },
    destination: {
      identity: 0x10005,
      cluster_name: "c1",
      namespace: "demo",
      pod_name: "echo-1",
      labels: ["k8s:app=echo"],
    },
    Type: "L3_L4",
    node_name: "c1/c1-worker",
    event_type: { type: 1, sub_type: 158 },
    ...overrides,
  };
}

const matches = (whitelist: object[], blacklist: object[] = [], f = flow()) =>
  compileFlowFilters(whitelist as never, blacklist as never).matches(f);

describe("flow filters", () => {
  it("no filter matches everything; whitelist entries are ORed, fields ANDed", () => {
    assert.equal(matches([]), true);
    assert.equal(matches([{ source_cluster_name: ["c2"], verdict: ["DROPPED"] }]), true);
    assert.equal(matches([{ source_cluster_name: ["c2"], verdict: ["FORWARDED"] }]), false);
    assert.equal(matches([{ verdict: ["FORWARDED"] }, { destination_cluster_name: ["c1"] }]), true);
  });

  it("the blacklist removes what it matches", () => {
    assert.equal(matches([], [{ verdict: ["DROPPED"] }]), false);
    assert.equal(matches([{ source_cluster_name: ["c2"] }], [{ destination_port: ["443"] }]), true);
  });

  it("pods by namespace/prefix, IPs and CIDRs, identities, ports, protocols, TCP flags, event types, nodes", () => {
    assert.equal(matches([{ source_pod: ["demo/client"] }]), true);
    assert.equal(matches([{ source_pod: ["client"] }]), false, "no namespace means default");
    assert.equal(matches([{ destination_pod: ["demo/"] }]), true, "a whole namespace");
    assert.equal(matches([{ source_ip: ["10.2.0.0/24"] }]), true);
    assert.equal(matches([{ destination_ip: ["10.1.0.21"] }]), false);
    assert.equal(matches([{ source_identity: [0x20001] }]), true);
    assert.equal(matches([{ destination_port: ["80"], protocol: ["TCP"] }]), true);
    assert.equal(matches([{ protocol: ["udp"] }]), false);
    assert.equal(matches([{ tcp_flags: [{ SYN: true }] }]), true);
    assert.equal(matches([{ tcp_flags: [{ SYN: true, ACK: true }] }]), false);
    assert.equal(matches([{ event_type: [{ type: 1 }] }]), true);
    assert.equal(matches([{ event_type: [{ type: 1, match_sub_type: true, sub_type: 133 }] }]), false);
    assert.equal(matches([{ node_name: ["c1/*"] }]), true);
    assert.equal(matches([{ drop_reason_desc: ["SERVICE_BACKEND_NOT_FOUND"] }]), true);
  });

  it("label selectors with or without a source, set-based and negated", () => {
    assert.equal(matches([{ source_label: ["k8s:app=client"] }]), true);
    assert.equal(matches([{ source_label: ["app in (web, client)"] }]), true);
    assert.equal(matches([{ source_label: ["app=client,!canary"] }]), true);
    assert.equal(matches([{ source_label: ["reserved:app=client"] }]), false);
    assert.equal(matches([{ destination_label: ["app notin (echo)"] }]), false);
    assert.equal(
      parseLabelSelector("source_label", "io.cilium.k8s.policy.cluster=c2")[0].key,
      "io.cilium.k8s.policy.cluster",
    );
  });

  it("malformed or unsupported filters name their field", () => {
    const field = (filter: object) => {
      try {
        compileFlowFilters([filter as never]);
      } catch (error) {
        assert.ok(error instanceof FlowFilterError);
        return error.field;
      }
      return "accepted";
    };
    assert.equal(field({ source_ip: ["10.0.0.300"] }), "source_ip");
    assert.equal(field({ destination_port: ["http"] }), "destination_port");
    assert.equal(field({ protocol: ["tcpp"] }), "protocol");
    assert.equal(field({ verdict: ["MAYBE"] }), "verdict");
    assert.equal(field({ source_label: ["a in (b"] }), "source_label");
    assert.equal(field({ http_path: ["/x"] }), "http_path");
  });
});
