/**
 * Kubernetes NetworkPolicy semantics, table-driven: each case is policies + a connection, checked
 * through the same resolver and lookup the agents use (tracePolicy).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type TraceEndpoint, tracePolicy } from "./trace.js";
import { POLICY_PROTOCOL } from "./types.js";

const NAMESPACES: Record<string, Record<string, string>> = {
  demo: { team: "a", "kubernetes.io/metadata.name": "demo" },
  other: { team: "b", "kubernetes.io/metadata.name": "other" },
};
const pod = (ref: string, labels: Record<string, string>, cluster = "c1"): TraceEndpoint => {
  const [namespace] = ref.split("/");
  return {
    type: "pod",
    cluster,
    namespace,
    name: ref,
    labels,
    namespaceLabels: NAMESPACES[namespace],
    namedPorts: [{ name: "http", port: 8080, protocol: "TCP" }],
  };
};
const web = pod("demo/web", { app: "web" });
const client = pod("demo/client", { app: "client" });
const otherClient = pod("other/client", { app: "client" });
const remoteClient = pod("demo/client", { app: "client" }, "c2");
const address = (ip: string): TraceEndpoint => ({ type: "address", ip });

const np = (name: string, spec: Record<string, unknown>, namespace = "demo") => ({
  apiVersion: "networking.k8s.io/v1",
  kind: "NetworkPolicy",
  metadata: { name, namespace },
  spec,
});
const webSelector = { matchLabels: { app: "web" } };
const denyAllIngress = np("deny-all", { podSelector: {}, policyTypes: ["Ingress"] });

interface Case {
  name: string;
  policies: unknown[];
  from: TraceEndpoint;
  to: TraceEndpoint;
  port?: number;
  protocol?: number;
  allowed: boolean;
  /** the deciding rule, when one decided */
  rule?: string;
}

const cases: Case[] = [
  { name: "no policy: not enforced, allowed", policies: [], from: client, to: web, allowed: true },
  { name: "deny-all ingress denies", policies: [denyAllIngress], from: client, to: web, allowed: false },
  {
    name: "policyTypes absent: Ingress is enforced even without ingress rules",
    policies: [np("p", { podSelector: webSelector })],
    from: client,
    to: web,
    allowed: false,
  },
  {
    name: "ingress: [{}] admits everything",
    policies: [np("p", { podSelector: webSelector, ingress: [{}] })],
    from: otherClient,
    to: web,
    allowed: true,
    rule: "NetworkPolicy demo/p ingress[0]",
  },
  {
    name: "from: [] admits every source",
    policies: [np("p", { podSelector: webSelector, ingress: [{ from: [] }] })],
    from: address("203.0.113.9"),
    to: web,
    allowed: true,
  },
  {
    name: "podSelector peer: same namespace only",
    policies: [
      np("p", {
        podSelector: webSelector,
        ingress: [{ from: [{ podSelector: { matchLabels: { app: "client" } } }] }],
      }),
    ],
    from: client,
    to: web,
    allowed: true,
  },
  {
    name: "podSelector peer does not admit the same labels in another namespace",
    policies: [
      np("p", {
        podSelector: webSelector,
        ingress: [{ from: [{ podSelector: { matchLabels: { app: "client" } } }] }],
      }),
    ],
    from: otherClient,
    to: web,
    allowed: false,
  },
  {
    name: "namespaceSelector peer: every pod of matching namespaces",
    policies: [
      np("p", {
        podSelector: webSelector,
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "b" } } }] }],
      }),
    ],
    from: otherClient,
    to: web,
    allowed: true,
  },
  {
    name: "namespaceSelector peer excludes the policy's own namespace when it does not match",
    policies: [
      np("p", {
        podSelector: webSelector,
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "b" } } }] }],
      }),
    ],
    from: client,
    to: web,
    allowed: false,
  },
  {
    name: "podSelector AND namespaceSelector in one peer",
    policies: [
      np("p", {
        podSelector: webSelector,
        ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: "client" } } }] }],
      }),
    ],
    from: otherClient,
    to: web,
    allowed: true,
  },
  {
    name: "podSelector AND namespaceSelector: labels must match too",
    policies: [
      np("p", {
        podSelector: webSelector,
        ingress: [{ from: [{ namespaceSelector: {}, podSelector: { matchLabels: { app: "client" } } }] }],
      }),
    ],
    from: pod("other/db", { app: "db" }),
    to: web,
    allowed: false,
  },
  {
    name: "matchExpressions NotIn",
    policies: [
      np("p", {
        podSelector: webSelector,
        ingress: [
          {
            from: [
              { podSelector: { matchExpressions: [{ key: "app", operator: "NotIn", values: ["client"] }] } },
            ],
          },
        ],
      }),
    ],
    from: client,
    to: web,
    allowed: false,
  },
  {
    name: "matchExpressions DoesNotExist admits a pod without the label",
    policies: [
      np("p", {
        podSelector: webSelector,
        ingress: [
          { from: [{ podSelector: { matchExpressions: [{ key: "role", operator: "DoesNotExist" }] } }] },
        ],
      }),
    ],
    from: client,
    to: web,
    allowed: true,
  },
  {
    name: "ports: TCP 80 allowed",
    policies: [np("p", { podSelector: webSelector, ingress: [{ ports: [{ port: 80 }] }] })],
    from: client,
    to: web,
    port: 80,
    allowed: true,
  },
  {
    name: "ports: TCP 81 denied",
    policies: [np("p", { podSelector: webSelector, ingress: [{ ports: [{ port: 80 }] }] })],
    from: client,
    to: web,
    port: 81,
    allowed: false,
  },
  {
    name: "ports: protocol defaults to TCP, UDP 80 denied",
    policies: [np("p", { podSelector: webSelector, ingress: [{ ports: [{ port: 80 }] }] })],
    from: client,
    to: web,
    port: 80,
    protocol: POLICY_PROTOCOL.udp,
    allowed: false,
  },
  {
    name: "ports: protocol without port admits every port of it",
    policies: [np("p", { podSelector: webSelector, ingress: [{ ports: [{ protocol: "UDP" }] }] })],
    from: client,
    to: web,
    port: 5353,
    protocol: POLICY_PROTOCOL.udp,
    allowed: true,
  },
  {
    name: "endPort: last port of the range allowed",
    policies: [np("p", { podSelector: webSelector, ingress: [{ ports: [{ port: 8000, endPort: 8080 }] }] })],
    from: client,
    to: web,
    port: 8080,
    allowed: true,
  },
  {
    name: "endPort: past the range denied",
    policies: [np("p", { podSelector: webSelector, ingress: [{ ports: [{ port: 8000, endPort: 8080 }] }] })],
    from: client,
    to: web,
    port: 8081,
    allowed: false,
  },
  {
    name: "named port resolves against the selected pod's container port",
    policies: [np("p", { podSelector: webSelector, ingress: [{ ports: [{ port: "http" }] }] })],
    from: client,
    to: web,
    port: 8080,
    allowed: true,
  },
  {
    name: "named port admits no other port",
    policies: [np("p", { podSelector: webSelector, ingress: [{ ports: [{ port: "http" }] }] })],
    from: client,
    to: web,
    port: 80,
    allowed: false,
  },
  {
    name: "peers and ports: both must match",
    policies: [
      np("p", {
        podSelector: webSelector,
        ingress: [{ from: [{ podSelector: { matchLabels: { app: "client" } } }], ports: [{ port: 80 }] }],
      }),
    ],
    from: otherClient,
    to: web,
    port: 80,
    allowed: false,
  },
  {
    name: "policies add up: a second policy's rule admits what the first does not",
    policies: [
      np("a", {
        podSelector: webSelector,
        ingress: [{ from: [{ podSelector: { matchLabels: { app: "client" } } }] }],
      }),
      np("b", {
        podSelector: webSelector,
        ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: "b" } } }] }],
      }),
    ],
    from: otherClient,
    to: web,
    allowed: true,
    rule: "NetworkPolicy demo/b ingress[0]",
  },
  {
    name: "a policy of another namespace does not select the pod",
    policies: [np("p", { podSelector: {}, policyTypes: ["Ingress"] }, "other")],
    from: client,
    to: web,
    allowed: true,
  },
  {
    name: "policyTypes [Ingress] leaves egress open",
    policies: [np("p", { podSelector: {}, policyTypes: ["Ingress"] })],
    from: web,
    to: address("203.0.113.9"),
    allowed: true,
  },
  {
    name: "egress rules without policyTypes enforce egress",
    policies: [
      np("p", {
        podSelector: { matchLabels: { app: "client" } },
        egress: [{ to: [{ podSelector: webSelector }] }],
      }),
    ],
    from: client,
    to: pod("demo/db", { app: "db" }),
    allowed: false,
  },
  {
    name: "egress to a selected pod",
    policies: [
      np("p", {
        podSelector: { matchLabels: { app: "client" } },
        egress: [{ to: [{ podSelector: webSelector }] }],
      }),
    ],
    from: client,
    to: web,
    allowed: true,
  },
  {
    name: "policyTypes [Egress] with no rules denies all egress",
    policies: [np("p", { podSelector: {}, policyTypes: ["Egress"] })],
    from: client,
    to: web,
    allowed: false,
  },
  {
    name: "ipBlock admits an address inside",
    policies: [
      np("p", {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [{ to: [{ ipBlock: { cidr: "192.0.2.0/24", except: ["192.0.2.0/28"] } }] }],
      }),
    ],
    from: client,
    to: address("192.0.2.100"),
    allowed: true,
  },
  {
    name: "ipBlock except: an excepted address is denied",
    policies: [
      np("p", {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [{ to: [{ ipBlock: { cidr: "192.0.2.0/24", except: ["192.0.2.0/28"] } }] }],
      }),
    ],
    from: client,
    to: address("192.0.2.5"),
    allowed: false,
  },
  {
    name: "ipBlock: an address outside is denied",
    policies: [
      np("p", {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [{ to: [{ ipBlock: { cidr: "192.0.2.0/24" } }] }],
      }),
    ],
    from: client,
    to: address("198.51.100.1"),
    allowed: false,
  },
  {
    name: "ipBlock 0.0.0.0/0 admits the world",
    policies: [
      np("p", {
        podSelector: {},
        policyTypes: ["Egress"],
        egress: [{ to: [{ ipBlock: { cidr: "0.0.0.0/0" } }] }],
      }),
    ],
    from: client,
    to: address("198.51.100.1"),
    allowed: true,
  },
  {
    name: "ipBlock ingress from an address",
    policies: [
      np("p", { podSelector: webSelector, ingress: [{ from: [{ ipBlock: { cidr: "203.0.113.0/24" } }] }] }),
    ],
    from: address("203.0.113.7"),
    to: web,
    allowed: true,
  },
  {
    name: "local-cluster default: a pod selector does not admit another cluster's pod with the same labels",
    policies: [
      np("p", {
        podSelector: webSelector,
        ingress: [{ from: [{ podSelector: { matchLabels: { app: "client" } } }] }],
      }),
    ],
    from: remoteClient,
    to: web,
    allowed: false,
  },
  {
    name: "a selector naming the cluster admits that cluster's pods",
    policies: [
      np("p", {
        podSelector: webSelector,
        ingress: [
          {
            from: [{ podSelector: { matchLabels: { app: "client", "io.cilium.k8s.policy.cluster": "c2" } } }],
          },
        ],
      }),
    ],
    from: remoteClient,
    to: web,
    allowed: true,
  },
  {
    name: "from: [] (every source) admits other clusters' pods too",
    policies: [np("p", { podSelector: webSelector, ingress: [{}] })],
    from: remoteClient,
    to: web,
    allowed: true,
  },
];

describe("NetworkPolicy semantics", () => {
  for (const c of cases)
    it(c.name, () => {
      const result = tracePolicy({
        clusterName: "c1",
        policies: c.policies,
        from: c.from,
        to: c.to,
        protocol: c.protocol ?? POLICY_PROTOCOL.tcp,
        port: c.port ?? 80,
      });
      assert.deepEqual(result.invalidPolicies, []);
      assert.equal(
        result.allowed,
        c.allowed,
        JSON.stringify({ egress: result.egress, ingress: result.ingress }),
      );
      if (c.rule) assert.equal(result.ingress.rule ?? result.egress.rule, c.rule);
    });
});
