/**
 * Golden values in the shapes Cilium writes (each value file links its Go type): a value a
 * Cilium writer produces must decode, and what we encode must be byte-identical to Cilium's shape.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  clusterIdOfIdentity,
  clusterIdProblem,
  clusterNameProblem,
  identityRange,
} from "./cluster-identity.js";
import { InvalidEntryError, type RejectReason } from "./errors.js";
import { goMarshal } from "./go-json.js";
import { CANARY_NAMES, joinKey, keys, remoteWatchPrefix } from "./paths.js";
import {
  remoteIdentityDecoder,
  remoteIpDecoder,
  remoteNodeDecoder,
  remoteServiceDecoder,
} from "./remote-validation.js";
import { decodeClusterConfig, encodeClusterConfig, ownClusterConfig } from "./values/cluster-config.js";
import { formatLabels, labelsFromMap, parseLabels } from "./values/identity.js";
import { decodeIpIdentityPair, encodeIpIdentityPair } from "./values/ipcache.js";
import { decodeNode, encodeNode, nodeIp } from "./values/node.js";
import { decodeService, encodeService } from "./values/service.js";
import { isRfc3339, rfc3339 } from "./values/timestamp.js";
import { decodeCidr, encodeLegacyCidr } from "./wire-ip.js";

/** Compact form of a golden (pretty-printed) JSON text, keeping its field order. */
const compact = (text: string) => JSON.stringify(JSON.parse(text));

// Cilium v1.18.4 clustermesh-apiserver/clustermesh/testdata/ciliumnodes.txtar:
// cilium/state/nodes/v1/cluster3/test-node-1
const GOLDEN_NODE = `{
  "Name": "test-node-1",
  "Cluster": "cluster3",
  "IPAddresses": [
    {"Type": "InternalIP", "IP": "172.18.0.2"},
    {"Type": "InternalIP", "IP": "fc00:c111::2"},
    {"Type": "CiliumInternalIP", "IP": "10.244.0.10"},
    {"Type": "CiliumInternalIP", "IP": "fd00:10:244::e2d6"}
  ],
  "IPv4AllocCIDR": {"IP": "10.244.0.0", "Mask": "////AA=="},
  "IPv4SecondaryAllocCIDRs": null,
  "IPv6AllocCIDR": {"IP": "fd00:10:244::", "Mask": "//////////8AAAAAAAAAAA=="},
  "IPv6SecondaryAllocCIDRs": null,
  "IPv4HealthIP": "10.244.0.134",
  "IPv6HealthIP": "fd00:10:244::d812",
  "IPv4IngressIP": "",
  "IPv6IngressIP": "",
  "ClusterID": 3,
  "Source": "custom-resource",
  "EncryptionKey": 0,
  "Labels": {"kubernetes.io/hostname": "test-node-1"},
  "Annotations": {"network.cilium.io/wg-pub-key": "VRksOB6ZNds4oXWIGfSVpvc0gBhcOWFmzvTDcyvULlI="},
  "NodeIdentity": 0,
  "WireguardPubKey": "VRksOB6ZNds4oXWIGfSVpvc0gBhcOWFmzvTDcyvULlI=",
  "BootID": "570d3fd1-93db-4862-ba99-6a3c2c10c38f"
}`;

// globalnamespace-services.txtar: cilium/state/services/v1/cluster3/ns-alpha/echo-service
const GOLDEN_SERVICE = `{
  "cluster": "cluster3", "namespace": "ns-alpha", "name": "echo-service",
  "frontends": {"10.96.0.10": {"http": {"Protocol": "TCP", "Port": 80}}},
  "backends":  {"10.244.1.10": {"http": {"Protocol": "TCP", "Port": 8080}}},
  "hostnames": {}, "labels": {}, "selector": {"app": "echo"},
  "includeExternal": true, "shared": true, "clusterID": 3
}`;

// Stable-version ipcache value (https://github.com/cilium/cilium/blob/main/pkg/identity/identity.go IPIdentityPair).
const GOLDEN_IP =
  '{"IP":"10.5.1.9","Mask":null,"HostIP":"10.6.1.3","ID":543510,"Key":0,"Metadata":"cilium-global:default:node1:2191","K8sNamespace":"default","K8sPodName":"pod-1"}';
// ciliumendpoints.txtar (a development version: no Mask, extra K8sPodUID).
const GOLDEN_IP_DEV = `{"IP":"10.244.2.74","HostIP":"172.18.0.2","ID":199475,"Key":5,"Metadata":"",
  "K8sNamespace":"bar","K8sPodName":"cep-002","K8sPodUID":"1b7b8b1c","K8sServiceAccount":"default",
  "NamedPorts":[{"Name":"http","Port":8080,"Protocol":"TCP"},{"Name":"dns","Port":53,"Protocol":"UDP"}]}`;

// ciliumidentitites.txtar: cilium/state/identities/v1/id/196915
const GOLDEN_IDENTITY =
  "k8s:app=baz;k8s:io.cilium.k8s.policy.cluster=cluster3;k8s:io.kubernetes.pod.namespace=bar;";

// clusterconfig.txtar: cilium/cluster-config/cluster3
const GOLDEN_CLUSTER_CONFIG =
  '{"id":3,"capabilities":{"syncedCanaries":true,"maxConnectedClusters":255,"serviceExportsEnabled":false}}';

const cluster3 = { name: "cluster3", id: 3 };

function rejects(fn: () => unknown, reason: RejectReason, key?: string): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InvalidEntryError, `expected InvalidEntryError, got ${String(error)}`);
    assert.equal(error.reason, reason, error.message);
    if (key) assert.equal(error.key, key);
    return true;
  });
}

describe("kvstore keys", () => {
  it("follow Cilium's layout", () => {
    assert.equal(keys.node("cluster3", "test-node-1"), "cilium/state/nodes/v1/cluster3/test-node-1");
    assert.equal(keys.service("c1", "demo", "echo"), "cilium/state/services/v1/c1/demo/echo");
    assert.equal(keys.identity(196915), "cilium/state/identities/v1/id/196915");
    assert.equal(keys.ip("10.244.1.79"), "cilium/state/ip/v1/default/10.244.1.79");
    assert.equal(keys.ip("10.0.0.0/8"), "cilium/state/ip/v1/default/10.0.0.0/8");
    assert.equal(keys.clusterConfig("cluster3"), "cilium/cluster-config/cluster3");
    assert.equal(
      keys.canary("cluster3", CANARY_NAMES.identities),
      "cilium/synced/cluster3/cilium/state/identities/v1",
    );
    assert.equal(keys.canary("cluster3", CANARY_NAMES.ipcache), "cilium/synced/cluster3/cilium/state/ip/v1");
    assert.equal(joinKey("cilium/", "/state//x/"), "cilium/state/x");
    // The trailing slash keeps cluster1 from matching cluster10.
    assert.equal(remoteWatchPrefix("nodes", "cluster1"), "cilium/state/nodes/v1/cluster1/");
    assert.equal(remoteWatchPrefix("ipcache", "cluster1"), "cilium/state/ip/v1/default/");
  });
});

describe("cluster identity", () => {
  it("validates names like Cilium", () => {
    assert.equal(clusterNameProblem("cluster-1"), undefined);
    assert.match(clusterNameProblem("") ?? "", /empty/);
    assert.match(clusterNameProblem("Cluster") ?? "", /lower case/);
    assert.match(clusterNameProblem("-a") ?? "", /lower case/);
    assert.match(clusterNameProblem("a".repeat(33)) ?? "", /longer than 32/);
    assert.match(clusterNameProblem("default", 1) ?? "", /not allowed/);
    assert.equal(clusterNameProblem("default", 0), undefined);
  });

  it("validates ids and computes identity ranges (cluster id in bits 16-23)", () => {
    assert.equal(clusterIdProblem(1), undefined);
    assert.match(clusterIdProblem(0) ?? "", /outside 1..255/);
    assert.match(clusterIdProblem(256) ?? "", /outside/);
    assert.equal(clusterIdProblem(300, 511), undefined);
    assert.deepEqual(identityRange(1), { first: 65536, last: 131071 });
    assert.deepEqual(identityRange(3), { first: 196608, last: 262143 });
    assert.deepEqual(identityRange(255), { first: 16711680, last: 16777215 });
    assert.deepEqual(identityRange(0), { first: 256, last: 65535 });
    assert.equal(clusterIdOfIdentity(199472), 3);
    assert.equal(clusterIdOfIdentity(16711681), 255);
    assert.deepEqual(identityRange(3, 511), { first: 98304, last: 131071 });
  });
});

describe("go-json", () => {
  it("sorts map keys byte-wise, keeps struct order, escapes like Go", () => {
    const map = new Map([
      ["9", 1],
      ["10", 2],
      ["a<b", 3],
    ]);
    assert.equal(
      goMarshal({ z: 1, a: map, s: "x&y" }),
      '{"z":1,"a":{"10":2,"9":1,"a\\u003cb":3},"s":"x\\u0026y"}',
    );
  });
});

describe("node values", () => {
  it("decodes the golden node and re-encodes it byte-identically (legacy CIDR objects)", () => {
    const node = decodeNode("k", GOLDEN_NODE);
    assert.equal(node.IPv4AllocCIDR, "10.244.0.0/24");
    assert.equal(node.IPv6AllocCIDR, "fd00:10:244::/64");
    assert.equal(nodeIp(node), "172.18.0.2");
    assert.equal(nodeIp(node, 6), "fc00:c111::2");
    assert.equal(encodeNode(node), compact(GOLDEN_NODE));
  });

  it("reads missing fields as zero values; refuses the string CIDR form, like Cilium 1.18-1.20", () => {
    rejects(
      () => decodeNode("k", '{"Name":"n","Cluster":"c","IPv4AllocCIDR":"10.1.2.0/24","ClusterID":1}'),
      "wrong-type",
    );
    const node = decodeNode(
      "k",
      '{"Name":"n","Cluster":"c","IPv4AllocCIDR":{"IP":"10.1.2.0","Mask":"////AA=="},"ClusterID":1}',
    );
    assert.equal(node.IPv4AllocCIDR, "10.1.2.0/24");
    assert.equal(node.IPAddresses, null);
    assert.equal(node.IPv4HealthIP, "");
    assert.match(encodeNode(node), /"IPv4AllocCIDR":\{"IP":"10.1.2.0","Mask":"\/\/\/\/AA=="\}/);
  });

  it("converts CIDRs both ways", () => {
    assert.deepEqual(encodeLegacyCidr("10.244.0.0/24"), { IP: "10.244.0.0", Mask: "////AA==" });
    assert.deepEqual(encodeLegacyCidr("fd00:10:244::/64"), {
      IP: "fd00:10:244::",
      Mask: "//////////8AAAAAAAAAAA==",
    });
    assert.equal(decodeCidr("k", "c", { IP: "10.1.0.0", Mask: "//8AAA==" }), "10.1.0.0/16");
    rejects(() => decodeCidr("k", "c", { IP: "10.1.0.0", Mask: "/wD/AA==" }), "bad-cidr");
    rejects(() => decodeCidr("k", "c", { IP: "10.1.0.0", Mask: "//////////8AAAAAAAAAAA==" }), "bad-cidr");
    // Cilium's cidr.CIDR has no UnmarshalJSON: the text form does not decode there
    rejects(() => decodeCidr("k", "c", "10.1.0.0/16"), "wrong-type");
    rejects(() => decodeCidr("k", "c", 7), "wrong-type");
  });

  it("rejects malformed nodes with a typed error naming the key", () => {
    const key = "cilium/state/nodes/v1/cluster3/test-node-1";
    rejects(() => decodeNode(key, "{not json"), "not-json", key);
    rejects(() => decodeNode(key, "[]"), "wrong-type", key);
    rejects(() => decodeNode(key, '{"Name":5}'), "wrong-type", key);
    rejects(() => decodeNode(key, '{"ClusterID":"3"}'), "wrong-type", key);
    rejects(() => decodeNode(key, '{"EncryptionKey":256}'), "wrong-type", key);
    rejects(() => decodeNode(key, '{"IPAddresses":[{"Type":"InternalIP","IP":"300.1.1.1"}]}'), "bad-ip", key);
    rejects(
      () => decodeNode(key, '{"IPAddresses":[{"Type":"InternalIP","IP":"fe80::1%eth0"}]}'),
      "bad-ip",
      key,
    );
    // Cilium does not check address types: one a newer release may add is accepted and left out.
    assert.deepEqual(decodeNode(key, '{"IPAddresses":[{"Type":"Bogus","IP":"1.1.1.1"}]}').IPAddresses, []);
    rejects(() => decodeNode(key, '{"IPv4HealthIP":"nope"}'), "bad-ip", key);
    rejects(() => decodeNode(key, '{"Labels":{"a":1}}'), "wrong-type", key);
  });

  it("checks a remote node against its key and cluster", () => {
    const decode = remoteNodeDecoder(cluster3);
    assert.equal(decode("k", "test-node-1", GOLDEN_NODE).Name, "test-node-1");
    rejects(() => decode("k", "other-node", GOLDEN_NODE), "key-mismatch");
    rejects(
      () => remoteNodeDecoder({ name: "cluster4", id: 3 })("k", "test-node-1", GOLDEN_NODE),
      "cluster-mismatch",
    );
    rejects(
      () => remoteNodeDecoder({ name: "cluster3", id: 4 })("k", "test-node-1", GOLDEN_NODE),
      "cluster-id-mismatch",
    );
    rejects(() => decode("k", "a/b", GOLDEN_NODE), "bad-key");
  });
});

describe("service values", () => {
  it("decodes backends with the same ports to one shared port object, others to their own", () => {
    const http = { http: { Protocol: "TCP" as const, Port: 8080 } };
    const service = decodeService(
      "k",
      encodeService({
        cluster: "c2",
        namespace: "demo",
        name: "echo",
        frontends: {},
        backends: {
          "10.2.0.7": http,
          "10.2.0.8": http,
          "10.2.0.9": { http: { Protocol: "TCP", Port: 9090 } },
        },
        labels: {},
        selector: {},
        includeExternal: false,
        shared: true,
        clusterID: 2,
      }),
    );
    assert.strictEqual(service.backends["10.2.0.7"], service.backends["10.2.0.8"]);
    assert.deepEqual(service.backends["10.2.0.8"], http);
    assert.deepEqual(service.backends["10.2.0.9"], { http: { Protocol: "TCP", Port: 9090 } });
  });

  it("decodes the golden service and re-encodes it byte-identically", () => {
    const service = decodeService("k", GOLDEN_SERVICE);
    assert.deepEqual(service.backends, { "10.244.1.10": { http: { Protocol: "TCP", Port: 8080 } } });
    assert.equal(encodeService(service), compact(GOLDEN_SERVICE));
  });

  it("writes hostnames and zones only when present, maps sorted", () => {
    const service = decodeService("k", GOLDEN_SERVICE);
    service.backends["10.244.1.9"] = { "": { Protocol: "UDP", Port: 53 } };
    service.hostnames = { "10.244.1.9": "pod-b" };
    service.zones = { "10.244.1.9": { zone: "z1", forZones: [{ name: "z1" }] } };
    assert.equal(
      encodeService(service),
      '{"cluster":"cluster3","namespace":"ns-alpha","name":"echo-service","frontends":{"10.96.0.10":{"http":{"Protocol":"TCP","Port":80}}},' +
        '"backends":{"10.244.1.10":{"http":{"Protocol":"TCP","Port":8080}},"10.244.1.9":{"":{"Protocol":"UDP","Port":53}}},' +
        '"hostnames":{"10.244.1.9":"pod-b"},"zones":{"10.244.1.9":{"zone":"z1","forZones":[{"name":"z1"}]}},' +
        '"labels":{},"selector":{"app":"echo"},"includeExternal":true,"shared":true,"clusterID":3}',
    );
    assert.deepEqual(decodeService("k", encodeService(service)), service);
  });

  it("decides addresses, protocols and ports like Cilium (netip.ParseAddr, L4Addr)", () => {
    const base = JSON.parse(GOLDEN_SERVICE);
    const withBackends = (backends: unknown) => JSON.stringify({ ...base, backends });
    // Cilium refuses the whole service for an "ip@clusterID" key (only the agent uses that form).
    rejects(() => decodeService("k", withBackends({ "10.0.0.1@3": {} })), "bad-ip");
    rejects(() => decodeService("k", JSON.stringify({ ...base, frontends: { "10.0.0.1@3": {} } })), "bad-ip");
    rejects(() => decodeService("k", withBackends({ "10.0.0.x": {} })), "bad-ip");
    rejects(() => decodeService("k", withBackends({ "10.0.0.1%eth0": {} })), "bad-ip");
    // Legal for Cilium, useless to us: zoned IPv6, null ports, unknown protocols are left out,
    // each named in leftOut so that the reader counts it as ignored.
    const tcp = { p: { Protocol: "TCP", Port: 1 } };
    const zoned = decodeService("k", withBackends({ "fe80::1%eth0": tcp, "10.0.0.1": tcp }));
    assert.deepEqual(zoned.backends, { "10.0.0.1": { p: { Protocol: "TCP", Port: 1 } } });
    assert.deepEqual(zoned.leftOut, [
      { reason: "unsupported-address", detail: "backends address fe80::1%eth0 has a zone" },
    ]);
    const ports = decodeService(
      "k",
      withBackends({ "10.0.0.1": { p: { Protocol: "ICMP", Port: 1 }, q: null } }),
    );
    assert.deepEqual(ports.backends, { "10.0.0.1": {} });
    assert.deepEqual(ports.leftOut, [
      { reason: "unsupported-port", detail: 'backends 10.0.0.1 port "p" has protocol "ICMP"' },
      { reason: "unsupported-port", detail: 'backends 10.0.0.1 port "q" is null' },
    ]);
    assert.equal(decodeService("k", GOLDEN_SERVICE).leftOut, undefined, "nothing left out");
    rejects(
      () => decodeService("k", withBackends({ "10.0.0.1": { p: { Protocol: "TCP", Port: 70000 } } })),
      "wrong-type",
    );
    rejects(() => decodeService("k", JSON.stringify({ ...base, shared: "yes" })), "wrong-type");
  });

  it("checks a remote service against its key and cluster", () => {
    const decode = remoteServiceDecoder(cluster3);
    assert.equal(decode("k", "ns-alpha/echo-service", GOLDEN_SERVICE).name, "echo-service");
    rejects(() => decode("k", "ns-alpha/other", GOLDEN_SERVICE), "key-mismatch");
    rejects(() => decode("k", "ns-alpha", GOLDEN_SERVICE), "bad-key");
    rejects(
      () => remoteServiceDecoder({ name: "cluster1", id: 3 })("k", "ns-alpha/echo-service", GOLDEN_SERVICE),
      "cluster-mismatch",
    );
    rejects(
      () => remoteServiceDecoder({ name: "cluster3", id: 1 })("k", "ns-alpha/echo-service", GOLDEN_SERVICE),
      "cluster-id-mismatch",
    );
  });
});

describe("ipcache values", () => {
  it("decodes the stable golden value and re-encodes it byte-identically (Mask null)", () => {
    const pair = decodeIpIdentityPair("k", GOLDEN_IP);
    assert.equal(pair.prefixLength, null);
    assert.equal(encodeIpIdentityPair(pair), GOLDEN_IP);
  });

  it("decodes the development form (no Mask, unknown field) and writes Mask null", () => {
    const pair = decodeIpIdentityPair("k", GOLDEN_IP_DEV);
    assert.equal(pair.NamedPorts?.length, 2);
    assert.equal(
      encodeIpIdentityPair(pair),
      '{"IP":"10.244.2.74","Mask":null,"HostIP":"172.18.0.2","ID":199475,"Key":5,"Metadata":"","K8sNamespace":"bar","K8sPodName":"cep-002","K8sServiceAccount":"default","NamedPorts":[{"Name":"http","Port":8080,"Protocol":"TCP"},{"Name":"dns","Port":53,"Protocol":"UDP"}]}',
    );
  });

  it("writes prefix entries with a base64 mask", () => {
    const text = encodeIpIdentityPair({
      IP: "10.1.0.0",
      prefixLength: 16,
      HostIP: "",
      ID: 2,
      Key: 0,
      Metadata: "",
    });
    assert.equal(text, '{"IP":"10.1.0.0","Mask":"//8AAA==","HostIP":"","ID":2,"Key":0,"Metadata":""}');
    assert.equal(decodeIpIdentityPair("k", text).prefixLength, 16);
  });

  it("checks the key, the identity range and the IPs", () => {
    const decode = remoteIpDecoder(cluster3);
    assert.equal(decode("k", "10.244.2.74", GOLDEN_IP_DEV).ID, 199475);
    rejects(() => decode("k", "10.244.2.75", GOLDEN_IP_DEV), "key-mismatch");
    rejects(() => decode("k", "10.244.2.74/32", GOLDEN_IP_DEV), "key-mismatch");
    // 543510 belongs to cluster 8.
    rejects(() => decode("k", "10.5.1.9", GOLDEN_IP), "identity-out-of-range");
    assert.equal(
      decode("k", "10.0.0.1", '{"IP":"10.0.0.1","Mask":null,"HostIP":"","ID":6,"Key":0,"Metadata":""}').ID,
      6,
    );
    rejects(() => decode("k", "10.0.0.1", '{"IP":"10.0.0.1","HostIP":"1.2.3","ID":196700}'), "bad-ip");
    rejects(() => decode("k", "x", '{"IP":"x","ID":196700}'), "bad-ip");
    rejects(() => decode("k", "", '{"ID":196700}'), "missing-field");
    rejects(() => decode("k", "10.0.0.1", '{"IP":"10.0.0.1","ID":-1}'), "wrong-type");
    rejects(() => decode("k", "10.0.0.1", '{"IP":"10.0.0.1","Mask":"!!","ID":196700}'), "bad-cidr");
  });
});

describe("identity values", () => {
  it("parses the golden label list and formats it back (sorted by key, trailing ;)", () => {
    const labels = parseLabels("k", GOLDEN_IDENTITY);
    assert.equal(labels.length, 3);
    assert.equal(formatLabels(labels.reverse()), GOLDEN_IDENTITY);
    assert.equal(
      formatLabels(
        labelsFromMap({
          "k8s:io.kubernetes.pod.namespace": "bar",
          "k8s:app": "baz",
          "k8s:io.cilium.k8s.policy.cluster": "cluster3",
        }),
      ),
      GOLDEN_IDENTITY,
    );
  });

  it("checks identity range and cluster label", () => {
    const decode = remoteIdentityDecoder(cluster3);
    assert.equal(decode("k", "196915", GOLDEN_IDENTITY).id, 196915);
    rejects(() => decode("k", "65537", GOLDEN_IDENTITY), "identity-out-of-range");
    rejects(() => decode("k", "0196915", GOLDEN_IDENTITY), "bad-key");
    rejects(() => decode("k", "abc", GOLDEN_IDENTITY), "bad-key");
    rejects(() => decode("k", "196915", "k8s:app=baz;"), "bad-labels");
    rejects(() => decode("k", "196915", "k8s:app=baz"), "bad-labels");
    rejects(() => decode("k", "196915", "garbage;"), "bad-labels");
    rejects(() => decode("k", "196915", "k8s:io.cilium.k8s.policy.cluster=cluster1;"), "cluster-mismatch");
    rejects(() => decode("k", "196915", "unspec:io.cilium.k8s.policy.cluster=cluster3;"), "bad-labels");
  });
});

describe("cluster config, heartbeat and canary values", () => {
  it("writes exactly what Cilium's apiserver writes and decodes it", () => {
    assert.equal(encodeClusterConfig(ownClusterConfig(3, 255)), GOLDEN_CLUSTER_CONFIG);
    const config = decodeClusterConfig("k", GOLDEN_CLUSTER_CONFIG);
    assert.equal(config.id, 3);
    assert.equal(config.capabilities.syncedCanaries, true);
    assert.equal(config.capabilities.serviceExportsEnabled, false);
    assert.equal(
      decodeClusterConfig("k", '{"id":2,"capabilities":{}}').capabilities.serviceExportsEnabled,
      undefined,
    );
    const kvstoremesh = decodeClusterConfig(
      "k",
      '{"id":7,"capabilities":{"syncedCanaries":true,"cached":true,"maxConnectedClusters":511}}',
    );
    assert.equal(kvstoremesh.capabilities.cached, true);
    rejects(() => decodeClusterConfig("k", '{"id":"3"}'), "wrong-type");
    // Cilium decodes the export mode as a plain string: an unknown one is legal, kept, not refused.
    assert.equal(
      decodeClusterConfig("k", '{"id":3,"capabilities":{"endpointSlicesExportMode":"x"}}').capabilities
        .endpointSlicesExportMode,
      "x",
    );
    rejects(
      () => decodeClusterConfig("k", '{"id":3,"capabilities":{"endpointSlicesExportMode":3}}'),
      "wrong-type",
    );
  });

  it("formats RFC 3339 timestamps like Go", () => {
    assert.equal(rfc3339(new Date("2026-08-01T12:34:56.789Z")), "2026-08-01T12:34:56Z");
    assert.ok(isRfc3339("2026-08-01T14:34:56+02:00"));
    assert.ok(!isRfc3339("yesterday"));
  });
});

describe("sync decision", () => {
  it("puts what differs, keeps unknown old keys until synced, deletes the rest", async () => {
    const { decideSyncAction } = await import("./sync-store.js");
    const w = (value: string, leased = true, ownedThisRun = true) => ({ value, leased, ownedThisRun });
    assert.equal(decideSyncAction("v", undefined, false), "put");
    assert.equal(decideSyncAction("v", w("v"), false), "none");
    assert.equal(decideSyncAction("v", w("v", false), false), "put");
    assert.equal(decideSyncAction("v2", w("v"), false), "put");
    assert.equal(decideSyncAction(undefined, w("v", true, false), false), "none");
    assert.equal(decideSyncAction(undefined, w("v", true, false), true), "delete");
    assert.equal(decideSyncAction(undefined, w("v"), false), "delete");
    assert.equal(decideSyncAction(undefined, undefined, true), "none");
  });
});
