import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pino from "pino";
import { isGlobalService, isSharedService, serviceAffinity } from "../../lib/api/service-annotations.js";
import { remoteConfigProblem } from "../../lib/clustermesh/cluster-config.js";
import {
  backendsExpired,
  DEFAULT_LIFECYCLE,
  heartbeatSilent,
  parseDuration,
  reconnectDelayMs,
} from "../../lib/clustermesh/lifecycle.js";
import { ownClusterConfig } from "../../lib/kvstore/values/cluster-config.js";
import { emptyNode, type NodeValue } from "../../lib/kvstore/values/node.js";
import type { ClusterService } from "../../lib/kvstore/values/service.js";
import { remoteEntries } from "./config.js";
import { DropLedger } from "./drops.js";
import { meshDatapathInputs, type RemoteClusterView } from "./merge.js";

const b64 = (text: string) => Buffer.from(text).toString("base64");
const yaml = (endpoint: string, ca = "/var/lib/cilium/clustermesh/common-etcd-client-ca.crt") =>
  b64(
    `endpoints:\n- ${endpoint}\ntrusted-ca-file: ${ca}\ncert-file: /var/lib/cilium/clustermesh/common-etcd-client.crt\nkey-file: /var/lib/cilium/clustermesh/common-etcd-client.key\n`,
  );
const cert = { "ca.crt": b64("CA"), "tls.crt": b64("CERT"), "tls.key": b64("KEY") };

describe("remote cluster entries from the Secrets", () => {
  it("resolves file names to the remote-cert Secret and the remotes Secret, ignoring our own cluster", () => {
    const entries = remoteEntries({
      localClusterName: "c1",
      remotes: {
        c1: yaml("https://10.0.0.1:32379"),
        c2: yaml("https://10.0.0.2:32379"),
        c3: yaml("https://10.0.0.3:32379", "c3.etcd-client-ca.crt"),
        "c3.etcd-client-ca.crt": b64("OTHER CA"),
      },
      remoteCert: cert,
    });
    assert.deepEqual(
      entries.map((e) => e.name),
      ["c2", "c3"],
    );
    const [c2, c3] = entries;
    assert.ok("connection" in c2 && "connection" in c3);
    assert.deepEqual(c2.connection.tls, { ca: "CA", cert: "CERT", key: "KEY" });
    assert.equal(c2.connection.serverName, "c2.mesh.cilium.io");
    assert.equal(c3.connection.tls.ca, "OTHER CA");
    assert.notEqual(c2.connection.fingerprint, c3.connection.fingerprint);
  });

  it("reports bad names, bad YAML and missing certificates instead of dropping them", () => {
    const entries = remoteEntries({
      localClusterName: "c1",
      remotes: {
        Bad_Name: yaml("https://10.0.0.2:32379"),
        c2: yaml("http://10.0.0.2:32379"),
        c3: yaml("https://10.0.0.3:32379"),
      },
      remoteCert: undefined,
    });
    const errors = Object.fromEntries(entries.map((e) => [e.name, "error" in e ? e.error : ""]));
    assert.match(errors.Bad_Name, /invalid remote cluster name/);
    assert.match(errors.c2, /must use https/);
    assert.match(errors.c3, /missing TLS material: common-etcd-client-ca.crt/);
  });
});

describe("remote cluster configuration checks", () => {
  const local = { name: "c1", id: 1, maxConnectedClusters: 255 as const };
  it("accepts a valid remote and rejects reserved, local and duplicate ids", () => {
    assert.equal(remoteConfigProblem("c2", ownClusterConfig(2, 255), local, new Map()), undefined);
    assert.match(remoteConfigProblem("c2", ownClusterConfig(0, 255), local, new Map()) ?? "", /reserved/);
    assert.match(
      remoteConfigProblem("c2", ownClusterConfig(1, 255), local, new Map()) ?? "",
      /local cluster/,
    );
    assert.match(remoteConfigProblem("c2", ownClusterConfig(256, 255), local, new Map()) ?? "", /outside/);
    assert.match(
      remoteConfigProblem("c2", ownClusterConfig(3, 255), local, new Map([[3, "c3"]])) ?? "",
      /already used by c3/,
    );
    assert.equal(remoteConfigProblem("c2", ownClusterConfig(3, 255), local, new Map([[3, "c2"]])), undefined);
    assert.match(remoteConfigProblem("default", ownClusterConfig(3, 255), local, new Map()) ?? "", /default/);
  });
  it("needs an equal max-connected-clusters in extended mode only", () => {
    const extended = { ...local, maxConnectedClusters: 511 as const };
    assert.match(remoteConfigProblem("c2", ownClusterConfig(2, 255), extended, new Map()) ?? "", /differs/);
    assert.equal(remoteConfigProblem("c2", ownClusterConfig(300, 511), extended, new Map()), undefined);
  });
});

describe("lifecycle decisions", () => {
  const s = { ...DEFAULT_LIFECYCLE, backendTtlMs: 30_000, heartbeatTimeoutMs: 180_000 };
  it("backs off exponentially up to a cap", () => {
    assert.deepEqual(
      [0, 1, 2, 3, 10].map((n) => reconnectDelayMs(n, s)),
      [0, 500, 1_000, 2_000, 15_000],
    );
  });
  it("withdraws backends only after the TTL, never with TTL 0", () => {
    assert.equal(backendsExpired(undefined, 100_000, s), false);
    assert.equal(backendsExpired(0, 30_000, s), false);
    assert.equal(backendsExpired(0, 30_001, s), true);
    assert.equal(backendsExpired(0, 1e9, { ...s, backendTtlMs: 0 }), false);
  });
  it("notices heartbeat silence", () => {
    assert.equal(heartbeatSilent(0, 180_000, s), false);
    assert.equal(heartbeatSilent(0, 180_001, s), true);
  });
  it("parses flag durations", () => {
    assert.deepEqual(["30s", "500ms", "3m", "0", "1.5s", "1h", "5", "x"].map(parseDuration), [
      30_000,
      500,
      180_000,
      0,
      1_500,
      3_600_000,
      undefined,
      undefined,
    ]);
  });
});

describe("global service annotations", () => {
  const svc = (annotations: Record<string, string>) => ({ metadata: { annotations } });
  it("reads global, shared and affinity like Cilium", () => {
    assert.equal(isGlobalService(svc({ "service.cilium.io/global": "True" })), true);
    assert.equal(isGlobalService(svc({ "io.cilium/global-service": "true" })), true);
    assert.equal(isSharedService(svc({ "service.cilium.io/global": "true" })), true);
    assert.equal(
      isSharedService(svc({ "service.cilium.io/global": "true", "service.cilium.io/shared": "false" })),
      false,
    );
    assert.equal(isSharedService(svc({ "service.cilium.io/shared": "true" })), false, "not global");
    assert.equal(
      serviceAffinity(svc({ "service.cilium.io/global": "true", "service.cilium.io/affinity": "local" })),
      "local",
    );
    assert.equal(serviceAffinity(svc({ "service.cilium.io/affinity": "local" })), "none", "not global");
    assert.equal(
      serviceAffinity(svc({ "service.cilium.io/global": "true", "service.cilium.io/affinity": "x" })),
      "none",
    );
  });
});

describe("merging remote clusters into datapath inputs", () => {
  const node = (cluster: string, id: number, name: string, ip: string, cidr: string): NodeValue => ({
    ...emptyNode(name, cluster, id),
    IPAddresses: [{ Type: "InternalIP", IP: ip }],
    IPv4AllocCIDR: cidr,
  });
  const service = (cluster: string, id: number, backends: string[], shared = true): ClusterService => ({
    cluster,
    namespace: "demo",
    name: "echo",
    frontends: {},
    backends: Object.fromEntries(backends.map((ip) => [ip, { http: { Protocol: "TCP", Port: 8080 } }])),
    labels: {},
    selector: {},
    includeExternal: true,
    shared,
    clusterID: id,
  });
  const pair = (ip: string, hostIp: string, id: number) => ({
    IP: ip,
    prefixLength: null,
    HostIP: hostIp,
    ID: id,
    Key: 0,
    Metadata: "",
  });
  const local = [{ name: "c1-worker", internalIp: "172.31.0.3", podCidrs: ["10.1.0.0/24"] }];
  const c2: RemoteClusterView = {
    name: "c2",
    id: 2,
    nodes: [node("c2", 2, "w", "172.31.0.5", "10.2.0.0/24")],
    services: [service("c2", 2, ["10.2.0.7", "10.1.0.9", "fd00::8"])],
    ipcache: [
      pair("10.2.0.7", "172.31.0.5", 131_073),
      pair("10.1.0.9", "172.31.0.5", 131_074),
      pair("10.2.0.8", "172.31.0.9", 131_075),
      pair("10.2.0.10", "172.31.0.5", 1),
    ],
    backendsWithdrawn: false,
  };

  it("programs a remote's nodes, endpoints and shared backends", () => {
    const out = meshDatapathInputs(local, [c2]);
    assert.deepEqual(out.remoteNodes, [
      {
        nodeIp: "172.31.0.5",
        podCidrs: ["10.2.0.0/24"],
        nodeIdentity: 6,
        podCidrIdentity: 2,
        remoteCluster: true,
        clusterId: 2,
      },
    ]);
    assert.deepEqual(out.tunnelNodes, [
      { name: "c2/w", internalIp: "172.31.0.5", podCidrs: ["10.2.0.0/24"] },
    ]);
    assert.deepEqual(
      out.ipcache.map((e) => [e.prefix, e.identity, e.tunnelEndpoint]),
      [
        ["10.2.0.7/32", 131_073, "172.31.0.5"],
        ["10.2.0.10/32", 6, "172.31.0.5"],
      ],
      "host identity rewritten to remote-node; foreign IPs and unknown tunnel endpoints dropped",
    );
    assert.deepEqual(out.remoteBackends.get("demo/echo"), [
      { cluster: "c2", backends: { "10.2.0.7": { http: { Protocol: "TCP", Port: 8080 } } } },
    ]);
    assert.deepEqual(out.refused.get("c2"), { "foreign-address": 3 });
    assert.deepEqual(out.ignored.get("c2"), { "unsupported-address": 1 }, "the IPv6 backend");
    assert.deepEqual(
      out.dropped.map((d) => [d.key, d.reason, d.detail]),
      [
        [
          "cilium/state/ip/v1/default/10.1.0.9",
          "foreign-address",
          "IP 10.1.0.9 is outside the remote's pod CIDRs",
        ],
        [
          "cilium/state/ip/v1/default/10.2.0.8",
          "foreign-address",
          "tunnel endpoint 172.31.0.9 is not one of the remote's nodes",
        ],
        [
          "cilium/state/services/v1/c2/demo/echo",
          "foreign-address",
          "backend 10.1.0.9 is outside the remote's pod CIDRs and node IPs",
        ],
      ],
      "every refusal named by its etcd key, the out-of-range backend included",
    );
  });

  it("logs and counts each drop once, not at every merge; totals stay when the drop ends", () => {
    const lines: Record<string, unknown>[] = [];
    const log = pino(
      { level: "info" },
      {
        write: (line: string) => {
          lines.push(JSON.parse(line));
        },
      },
    );
    const ledger = new DropLedger(log);
    const first = meshDatapathInputs(local, [c2]).dropped;
    assert.equal(ledger.record(first).length, 3);
    assert.equal(ledger.record(meshDatapathInputs(local, [c2]).dropped).length, 0, "same drops: nothing new");
    assert.equal(lines.length, 3, "one line per drop");
    const backendLine = lines.find((l) => String(l.detail).startsWith("backend 10.1.0.9"));
    assert.equal(backendLine?.key, "cilium/state/services/v1/c2/demo/echo");
    assert.equal(backendLine?.remoteCluster, "c2");
    assert.deepEqual(ledger.totalsOf("c2"), { "foreign-address": 3 });
    // the remote fixes its service; later it publishes the foreign backend again: a new drop
    const fixed = { ...c2, services: [service("c2", 2, ["10.2.0.7"])] };
    assert.equal(ledger.record(meshDatapathInputs(local, [fixed]).dropped).length, 0);
    assert.equal(ledger.record(meshDatapathInputs(local, [c2]).dropped).length, 1);
    assert.deepEqual(ledger.totalsOf("c2"), { "foreign-address": 4 });
  });

  it("refuses nodes that overlap ours or an earlier remote's, and unshared or withdrawn services", () => {
    const hijacker: RemoteClusterView = {
      name: "c3",
      id: 3,
      nodes: [
        node("c3", 3, "a", "172.31.0.3", "10.3.0.0/24"),
        node("c3", 3, "b", "172.31.0.7", "10.2.0.0/25"),
      ],
      services: [service("c3", 3, ["10.3.0.5"], false)],
      ipcache: [],
      backendsWithdrawn: false,
    };
    const out = meshDatapathInputs(local, [hijacker, { ...c2, backendsWithdrawn: true }]);
    assert.deepEqual(
      out.remoteNodes.map((n) => n.nodeIp),
      ["172.31.0.5"],
    );
    assert.deepEqual(out.refused.get("c3"), { "node-ip-conflict": 1, "overlapping-cidr": 1 });
    assert.deepEqual(out.ignored.get("c3"), { "not-shared": 1 }, "legal, not used: not a refusal");
    assert.equal(out.remoteBackends.size, 0, "c2 withdrawn, c3 not shared");
    assert.equal(out.ipcache.length, 2, "a withdrawn remote keeps its ipcache");
  });

  it("accepts and counts as ignored (not refused) legal Cilium data it does not use", () => {
    const ipv6Only: NodeValue = {
      ...emptyNode("v6", "c2", 2),
      IPAddresses: [{ Type: "InternalIP", IP: "fd00::5" }],
    };
    const withLeftOut: ClusterService = {
      ...service("c2", 2, ["10.2.0.7", "fd00::7"]),
      name: "left-out",
      leftOut: [
        { reason: "unsupported-address", detail: "backends address fe80::1%eth0 has a zone" },
        { reason: "unsupported-port", detail: 'backends 10.2.0.7 port "q" is null' },
      ],
    };
    const legal: RemoteClusterView = {
      ...c2,
      nodes: [...c2.nodes, ipv6Only],
      services: [withLeftOut, { ...service("c2", 2, ["10.2.0.7"], false), name: "unshared" }],
      ipcache: [
        pair("10.2.0.7", "172.31.0.5", 131_073),
        pair("fd00::7", "172.31.0.5", 131_073),
        { ...pair("10.2.0.0", "172.31.0.5", 131_073), prefixLength: 24 },
      ],
    };
    const out = meshDatapathInputs(local, [legal]);
    assert.deepEqual(out.refused.get("c2"), {});
    assert.deepEqual(out.dropped, [], "nothing logged as a refusal");
    assert.deepEqual(out.ignored.get("c2"), {
      // IPv6-only node, IPv6 and prefix ipcache entries, IPv6 backend, zoned backend
      "unsupported-address": 5,
      "unsupported-port": 1,
      "not-shared": 1,
    });
    assert.deepEqual(
      out.remoteNodes.map((n) => n.nodeIp),
      ["172.31.0.5"],
    );
    assert.deepEqual(Object.keys(out.remoteBackends.get("demo/left-out")?.[0]?.backends ?? {}), ["10.2.0.7"]);
  });
});
