import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fieldErrorText } from "./errors.js";
import { parsePolicy } from "./parse.js";
import { policyCondition } from "./status.js";
import { POLICY_PROTOCOL } from "./types.js";

const cnp = (spec: unknown, key = "spec") => ({
  apiVersion: "cilium.io/v2",
  kind: "CiliumNetworkPolicy",
  metadata: { name: "p", namespace: "demo" },
  [key]: spec,
});
const errorsOf = (object: unknown) =>
  parsePolicy(object, { clusterName: "c1" }).errors.list.map(fieldErrorText);
const web = { matchLabels: { app: "web" } };

describe("policy parsers: bad input names the field", () => {
  const cases: Array<[string, unknown, string[]]> = [
    [
      "reversed port range",
      cnp({
        endpointSelector: web,
        ingress: [{ toPorts: [{ ports: [{ port: "80" }, { port: "90", endPort: 85 }] }] }],
      }),
      ["spec.ingress[0].toPorts[0].ports[1].endPort: must be >= port (85 < 90)"],
    ],
    [
      "unknown entity",
      cnp({ endpointSelector: web, egress: [{ toEntities: ["world", "everything"] }] }),
      [
        'spec.egress[0].toEntities[1]: unknown entity "everything" (known: all, world, world-ipv4, world-ipv6, cluster, mesh, host, remote-node, kube-apiserver, health, init, unmanaged)',
      ],
    ],
    [
      "bad CIDR",
      cnp({
        endpointSelector: web,
        egress: [{ toCIDR: ["10.0.0.0/33"] }, { toCIDRSet: [{ cidr: "banana" }] }],
      }),
      [
        'spec.egress[0].toCIDR[0]: "10.0.0.0/33" has an invalid prefix length (0..32)',
        'spec.egress[1].toCIDRSet[0].cidr: "banana" is not a CIDR (expected address/prefix, e.g. 10.1.0.0/16)',
      ],
    ],
    [
      "except outside the block",
      cnp({
        endpointSelector: web,
        egress: [{ toCIDRSet: [{ cidr: "10.0.0.0/8", except: ["192.168.0.0/16"] }] }],
      }),
      ["spec.egress[0].toCIDRSet[0].except[0]: 192.168.0.0/16 must be a strict subset of 10.0.0.0/8"],
    ],
    [
      "L7 rules, FQDNs and a peer field of the other direction",
      cnp({
        endpointSelector: web,
        ingress: [{ toEndpoints: [{}], toPorts: [{ ports: [{ port: "80" }], rules: { http: [{}] } }] }],
        egress: [{ toFQDNs: [{ matchName: "example.com" }] }],
      }),
      [
        "spec.ingress[0].toEndpoints: not valid in an ingress rule",
        "spec.ingress[0].toPorts[0].rules: L7 rules are not supported (L3/L4 policy only)",
        "spec.egress[0].toFQDNs: DNS-based rules are not supported (L3/L4 policy only)",
      ],
    ],
    [
      "specs: the path names the spec",
      cnp(
        [{ endpointSelector: web }, { endpointSelector: web, ingressDeny: [{ fromEntities: ["bogus"] }] }],
        "specs",
      ),
      [
        'specs[1].ingressDeny[0].fromEntities[0]: unknown entity "bogus" (known: all, world, world-ipv4, world-ipv6, cluster, mesh, host, remote-node, kube-apiserver, health, init, unmanaged)',
      ],
    ],
    [
      "missing endpointSelector and a bad operator",
      cnp({
        ingress: [
          { fromEndpoints: [{ matchExpressions: [{ key: "app", operator: "Like", values: ["x"] }] }] },
        ],
      }),
      [
        "spec.endpointSelector: missing",
        'spec.ingress[0].fromEndpoints[0].matchExpressions[0].operator: must be one of In, NotIn, Exists, DoesNotExist (got "Like")',
      ],
    ],
    [
      "NetworkPolicy: endPort, protocol, policyTypes, ipBlock",
      {
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name: "np", namespace: "demo" },
        spec: {
          podSelector: {},
          policyTypes: ["Ingress", "Sideways"],
          ingress: [
            {
              from: [{ ipBlock: { cidr: "10.0.0.0/8" }, podSelector: {} }],
              ports: [{ port: 90, endPort: 80 }, { protocol: "ICMP" }, { port: "http", endPort: 90 }],
            },
          ],
        },
      },
      [
        'spec.policyTypes[1]: must be Ingress or Egress (got "Sideways")',
        "spec.ingress[0].from[0]: ipBlock cannot be combined with podSelector or namespaceSelector",
        "spec.ingress[0].ports[0].endPort: must be >= port (80 < 90)",
        'spec.ingress[0].ports[1].protocol: must be TCP, UDP or SCTP (got "ICMP")',
        "spec.ingress[0].ports[2].endPort: cannot be used with a named port",
      ],
    ],
    [
      "unknown kind",
      { kind: "Policy" },
      ['kind: must be NetworkPolicy, CiliumNetworkPolicy or CiliumClusterwideNetworkPolicy (got "Policy")'],
    ],
  ];
  for (const [name, object, expected] of cases) it(name, () => assert.deepEqual(errorsOf(object), expected));

  it("a status condition lists the errors, or the warnings of a valid policy", () => {
    const bad = policyCondition(parsePolicy(cases[0][1], { clusterName: "c1" }));
    assert.equal(bad.status, "False");
    assert.match(bad.message, /spec\.ingress\[0\]\.toPorts\[0\]\.ports\[1\]\.endPort: must be >= port/);
    const warned = policyCondition(
      parsePolicy(
        cnp({
          endpointSelector: web,
          egress: [{ toPorts: [{ ports: [{ port: "dns", protocol: "UDP" }] }] }],
        }),
        {
          clusterName: "c1",
        },
      ),
    );
    assert.equal(warned.reason, "ValidWithWarnings");
    assert.match(
      warned.message,
      /spec\.egress\[0\]\.toPorts: named port "dns" in an egress rule: no container port of this cluster's pods has that name/,
    );
    assert.equal(
      policyCondition(parsePolicy(cnp({ endpointSelector: web }), { clusterName: "c1" })).reason,
      "Valid",
    );
  });
});

describe("policy parsers: semantics", () => {
  it("CNP: namespace and local cluster added to peers; ANY protocol expands; only-toPorts is L4-only; {} selects nothing", () => {
    const { policy } = parsePolicy(
      cnp({
        endpointSelector: web,
        ingress: [
          { fromEndpoints: [{ matchLabels: { "k8s:app": "client" } }] },
          { toPorts: [{ ports: [{ port: "53" }] }] },
          {},
        ],
        enableDefaultDeny: { egress: false },
      }),
      { clusterName: "c1" },
    );
    assert.ok(policy);
    const [subject] = policy.subjects;
    assert.deepEqual(subject.enforce, { ingress: true, egress: false });
    assert.deepEqual(
      subject.selector.requirements.map((r) => `${r.key}=${r.values}`),
      ["k8s:app=web", "k8s:io.kubernetes.pod.namespace=demo"],
    );
    const [fromClient, l4, nothing] = subject.rules;
    assert.deepEqual(
      fromClient.peers?.[0].type === "labels" &&
        fromClient.peers[0].selector.requirements.map((r) => `${r.key}=${r.values}`),
      ["k8s:app=client", "k8s:io.kubernetes.pod.namespace=demo", "k8s:io.cilium.k8s.policy.cluster=c1"],
    );
    assert.equal(l4.peers, null);
    assert.deepEqual(
      l4.ports?.map((p) => ("port" in p ? p.protocol : -1)),
      [POLICY_PROTOCOL.tcp, POLICY_PROTOCOL.udp, POLICY_PROTOCOL.sctp],
    );
    assert.deepEqual(nothing.peers, []);
  });

  it("NetworkPolicy as @kubernetes/client-node types it (`_from`, absent fields as undefined) parses like the wire form", () => {
    const wire = {
      kind: "NetworkPolicy",
      metadata: { name: "np", namespace: "demo" },
      spec: { podSelector: {}, ingress: [{ from: [{ podSelector: { matchLabels: { app: "x" } } }] }] },
    };
    const typed = {
      kind: "NetworkPolicy",
      metadata: { name: "np", namespace: "demo", labels: undefined },
      spec: {
        podSelector: { matchLabels: undefined, matchExpressions: undefined },
        policyTypes: undefined,
        egress: undefined,
        ingress: [
          {
            _from: [
              {
                ipBlock: undefined,
                namespaceSelector: undefined,
                podSelector: { matchLabels: { app: "x" } },
              },
            ],
            ports: undefined,
          },
        ],
      },
    };
    const a = parsePolicy(wire, { clusterName: "c1" });
    const b = parsePolicy(typed, { clusterName: "c1" });
    assert.deepEqual(b.errors.list, []);
    assert.deepEqual(b.policy, a.policy);
  });

  it("CCNP: no namespace is added; a selector naming the namespace or a cluster keeps it", () => {
    const { policy } = parsePolicy(
      {
        apiVersion: "cilium.io/v2",
        kind: "CiliumClusterwideNetworkPolicy",
        metadata: { name: "cw" },
        spec: {
          endpointSelector: {},
          ingress: [
            {
              fromEndpoints: [
                {
                  matchLabels: {
                    "io.cilium.k8s.policy.cluster": "c2",
                    "k8s:io.kubernetes.pod.namespace": "x",
                  },
                },
              ],
            },
          ],
        },
      },
      { clusterName: "c1" },
    );
    assert.ok(policy);
    assert.equal(policy.namespace, undefined);
    assert.deepEqual(policy.subjects[0].selector.requirements, []);
    const peer = policy.subjects[0].rules[0].peers?.[0];
    assert.deepEqual(
      peer?.type === "labels" && peer.selector.requirements.map((r) => `${r.key}=${r.values}`),
      ["k8s:io.cilium.k8s.policy.cluster=c2", "k8s:io.kubernetes.pod.namespace=x"],
    );
    assert.equal(policy.subjects[0].rules[0].ref.spec, undefined);
  });
});
