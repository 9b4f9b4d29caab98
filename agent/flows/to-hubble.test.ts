// A datapath event as Hubble's Flow: verdict, reason, trace point, endpoints with their clusters.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type FlowEvent, FlowType, FlowVerdict } from "../../bpf/flows/event.js";
import { FlowDirectory } from "./directory.js";
import { observationPoint, toHubbleFlow } from "./to-hubble.js";

const directory = new FlowDirectory({
  clusterName: "c1",
  nodes: [{ ip: "172.30.0.3", name: "c1-worker", cluster: "c1", local: true }],
  datapath: {
    endpoints: [
      {
        address: "10.1.0.10",
        ifindex: 11,
        identity: 65836,
        mac: "02:00:00:00:00:01",
        nodeMac: "02:00:00:00:00:02",
      },
    ],
    remoteNodes: [
      {
        nodeIp: "172.30.0.5",
        podCidrs: ["10.2.0.0/24"],
        nodeIdentity: 6,
        podCidrIdentity: 2,
        remoteCluster: true,
      },
    ],
    ipcache: [{ prefix: "10.2.0.3/32", identity: 131149, tunnelEndpoint: "172.30.0.5", remoteCluster: true }],
  },
  pods: [
    { ip: "10.1.0.10", namespace: "demo", name: "web-1", cluster: "c1" },
    { ip: "10.2.0.3", namespace: "demo", name: "client", cluster: "c2" },
  ],
  identities: [
    { id: 131149, labels: ["k8s:app=client", "k8s:io.cilium.k8s.policy.cluster=c2"], cluster: "c2" },
  ],
});

function event(overrides: Partial<FlowEvent>): FlowEvent {
  return {
    monotonicNs: 1_000_000_000n,
    type: FlowType.Trace,
    verdict: FlowVerdict.Forwarded,
    hook: "from-pod",
    reason: "ForwardTunnel",
    reasons: ["ForwardTunnel"],
    family: 4,
    source: "10.1.0.10",
    destination: "10.2.0.3",
    sourcePort: 40000,
    destinationPort: 80,
    proto: 6,
    tcpFlags: 0x12,
    sourceIdentity: 0,
    destinationIdentity: 0,
    ifindex: 11,
    length: 60,
    policy: 0,
    ...overrides,
  };
}

describe("datapath event → Hubble flow", () => {
  it("a cross-cluster forward: to-overlay, both clusters, the tunnel peer, TCP flags, wall time", () => {
    const flow = toHubbleFlow(event({}), {
      nodeName: "c1/c1-worker",
      directory,
      realtimeOffsetNs: 1_700_000_000_000_000_000n,
    });
    assert.equal(flow.verdict, "FORWARDED");
    assert.equal(flow.trace_observation_point, "TO_OVERLAY");
    assert.deepEqual(flow.event_type, { type: 4, sub_type: 4 });
    assert.deepEqual(
      [flow.source.cluster_name, flow.source.pod_name, flow.source.identity],
      ["c1", "web-1", 65836],
    );
    assert.deepEqual(
      [flow.destination.cluster_name, flow.destination.pod_name, flow.destination.identity],
      ["c2", "client", 131149],
    );
    assert.equal(flow.tunnel?.IP?.destination, "172.30.0.5");
    assert.deepEqual(flow.l4?.TCP?.flags, { SYN: true, ACK: true });
    assert.deepEqual(flow.time, { seconds: "1700000001", nanos: 0 });
    assert.equal(flow.traffic_direction, "EGRESS");
  });

  it("a drop at this node's NodePort from a remote pod: reason, the node as host of its cluster", () => {
    const flow = toHubbleFlow(
      event({
        type: FlowType.Drop,
        verdict: FlowVerdict.Dropped,
        hook: "from-netdev",
        reason: "DropNoBackend",
        reasons: ["DropNoBackend"],
        source: "10.2.0.3",
        destination: "172.30.0.3",
        destinationPort: 32765,
      }),
      { nodeName: "c1/c1-worker", directory, realtimeOffsetNs: 0n },
    );
    assert.deepEqual(
      [flow.verdict, flow.drop_reason_desc, flow.drop_reason],
      ["DROPPED", "SERVICE_BACKEND_NOT_FOUND", 158],
    );
    assert.deepEqual(flow.event_type, { type: 1, sub_type: 158 });
    assert.equal(flow.trace_observation_point, undefined);
    assert.equal(flow.source.cluster_name, "c2");
    assert.deepEqual(
      [flow.destination.identity, flow.destination.cluster_name, flow.destination.labels],
      [1, "c1", ["reserved:host"]],
    );
  });

  it("trace points by hook and what it did", () => {
    const point = (hook: FlowEvent["hook"], reasons: string[]) => observationPoint(event({ hook, reasons }));
    assert.equal(point("from-pod", ["ForwardLocal"]), "TO_ENDPOINT");
    assert.equal(point("from-pod", ["LbDnat", "ForwardStack"]), "TO_STACK");
    assert.equal(point("to-pod", []), "TO_ENDPOINT");
    assert.equal(point("from-tunnel", ["TunnelRx"]), "FROM_OVERLAY");
    assert.equal(point("to-tunnel", ["TunnelHostTx"]), "TO_OVERLAY");
    assert.equal(point("from-netdev", ["NodePortDnat", "ForwardLocal"]), "TO_ENDPOINT");
  });
});
