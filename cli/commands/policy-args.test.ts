import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { tracePolicy } from "../../lib/policy/trace.js";
import { parseDport, parseEndpointArg } from "./policy-args.js";
import { renderTrace } from "./policy-trace-text.js";

describe("meshctl policy trace arguments and output", () => {
  it("reads ns/pod, addresses and labels", () => {
    assert.deepEqual(parseEndpointArg("--from", "demo/client"), {
      type: "pod",
      namespace: "demo",
      pod: "client",
    });
    assert.deepEqual(parseEndpointArg("--to", "192.0.2.7"), { type: "address", ip: "192.0.2.7" });
    assert.deepEqual(
      parseEndpointArg(
        "--from",
        "k8s:app=x,io.kubernetes.pod.namespace=demo,io.cilium.k8s.namespace.labels.team=a",
      ),
      { type: "labels", namespace: "demo", labels: { app: "x" }, namespaceLabels: { team: "a" } },
    );
    assert.deepEqual(parseDport("53/udp"), { port: 53, protocol: 17, text: "53/UDP" });
    assert.deepEqual(parseDport("80"), { port: 80, protocol: 6, text: "80/TCP" });
  });

  it("says which rule decided, or why nothing did", () => {
    const web = {
      type: "pod" as const,
      cluster: "c1",
      namespace: "demo",
      name: "demo/web",
      labels: { app: "web" },
    };
    const client = {
      type: "pod" as const,
      cluster: "c2",
      namespace: "demo",
      name: "app=client",
      labels: { app: "client" },
    };
    const result = tracePolicy({
      clusterName: "c1",
      policies: [
        {
          kind: "CiliumNetworkPolicy",
          metadata: { name: "web", namespace: "demo" },
          spec: { endpointSelector: { matchLabels: { app: "web" } }, ingress: [{ fromEntities: ["mesh"] }] },
        },
        {
          kind: "CiliumNetworkPolicy",
          metadata: { name: "bad", namespace: "demo" },
          spec: { endpointSelector: {}, ingress: [{ fromEntities: ["nope"] }] },
        },
      ],
      from: client,
      to: web,
      protocol: 6,
      port: 80,
    });
    assert.deepEqual(renderTrace({ cluster: "c1", from: client, to: web, dport: "80/TCP", result }), [
      "Cluster:  c1",
      "From:     app=client (cluster c2)",
      "To:       demo/web (cluster c1)",
      "Port:     80/TCP",
      "Egress:   not evaluated: the pod is in cluster c2: its egress policy is that cluster's (trace there)",
      "Ingress:  allowed by CiliumNetworkPolicy demo/web ingress[0]",
      "Verdict:  ALLOWED",
      'Invalid policy, not enforced: CiliumNetworkPolicy/demo/bad: spec.ingress[0].fromEntities[0]: unknown entity "nope" (known: all, world, world-ipv4, world-ipv6, cluster, mesh, host, remote-node, kube-apiserver, health, init, unmanaged)',
    ]);
  });
});
