import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { emptyNode } from "../../lib/kvstore/values/node.js";
import { parseIpsecKeys } from "./ipsec/keys.js";
import {
  chooseIpsecBackend,
  encryptionPodMtu,
  localClusterNodes,
  planIpsecPeers,
  remoteClusterNodes,
  withoutTunnels,
} from "./plan.js";

const BOOT = "0123456789abcdef0123456789abcdef0123";
const KEY3 = `3+ rfc4106(gcm(aes)) ${"01".repeat(20)} 128`;
const KEY4 = `4+ rfc4106(gcm(aes)) ${"02".repeat(20)} 128`;

describe("encryption plan", () => {
  it("pod MTU: VXLAN without encryption, underlay - 80 for WireGuard, at most 1400 for IPsec", () => {
    assert.equal(encryptionPodMtu("none", 1500, 50), 1450);
    assert.equal(encryptionPodMtu("wireguard", 1500, 50), 1420);
    assert.equal(encryptionPodMtu("ipsec", 1500, 50), 1400);
    assert.equal(encryptionPodMtu("ipsec", 1400, 50), 1320);
  });

  it("hands remote prefixes to kernel routing: identities kept, tunnel endpoints gone, pods win over CIDRs", () => {
    const out = withoutTunnels({
      services: [],
      endpoints: [],
      remoteNodes: [{ nodeIp: "172.18.0.3", podCidrs: ["10.1.1.0/24"], nodeIdentity: 6, podCidrIdentity: 2 }],
      ipcache: [{ prefix: "10.1.1.7/32", identity: 4242, tunnelEndpoint: "172.18.0.3" }],
    });
    assert.deepEqual(out.remoteNodes, []);
    assert.deepEqual(out.ipcache, [
      { prefix: "172.18.0.3/32", identity: 6, remoteCluster: undefined },
      { prefix: "10.1.1.0/24", identity: 2, remoteCluster: undefined },
      { prefix: "10.1.1.7/32", identity: 4242 },
    ]);
  });

  it("local nodes: core Node + MeshNode; a Node without MeshNode stays, without a key", () => {
    const nodes = localClusterNodes(
      "c1",
      [
        { name: "a", internalIp: "172.18.0.2", podCidrs: ["10.1.0.0/24"] },
        { name: "b", internalIp: "172.18.0.3", podCidrs: ["10.1.1.0/24"] },
        { name: "c", internalIp: undefined, podCidrs: [] },
      ],
      [
        {
          apiVersion: "clustermesh.io/v1alpha1",
          kind: "MeshNode",
          metadata: { name: "a" },
          spec: {
            addresses: [{ type: "InternalIP", ip: "172.18.0.2" }],
            ipam: { podCIDRs: ["10.1.0.0/24"] },
            encryption: { wireguardPublicKey: "k", key: 3 },
            bootID: BOOT,
            clusterName: "c1",
            clusterID: 1,
          },
        },
      ],
    );
    assert.deepEqual(
      nodes.map((n) => [n.name, n.wireguardPublicKey, n.bootId, n.encryptionKey]),
      [
        ["a", "k", BOOT, 3],
        ["b", undefined, undefined, undefined],
      ],
    );
  });

  it("remote nodes: only those the mesh merge accepted, with their kvstore keys", () => {
    const value = { ...emptyNode("w1", "c2", 2), WireguardPubKey: "pk", BootID: BOOT, EncryptionKey: 4 };
    const other = emptyNode("w2", "c2", 2);
    const records = remoteClusterNodes(
      [{ name: "c2", nodes: [value, other] }],
      [{ name: "c2/w1", internalIp: "172.18.1.2", podCidrs: ["10.2.0.0/24"] }],
    );
    assert.deepEqual(records, [
      {
        cluster: "c2",
        name: "w1",
        nodeIp: "172.18.1.2",
        podCidrs: ["10.2.0.0/24"],
        wireguardPublicKey: "pk",
        bootId: BOOT,
        encryptionKey: 4,
      },
    ]);
  });

  it("IPsec: skips nodes without a boot id (their prefixes dropped); the initiator holds the old key until the peer advertises the new one", () => {
    const keys = parseIpsecKeys(`${KEY3}\n${KEY4}`);
    const remote = (name: string, ip: string, extra: object) => ({
      cluster: "c1",
      name,
      nodeIp: ip,
      podCidrs: [`10.9.${ip.split(".")[3]}.0/24`],
      ...extra,
    });
    const plan = planIpsecPeers({
      localIp: "172.18.0.5",
      keys,
      holdsBackKeyFor: (ip) => ip > "172.18.0.5",
      remotes: [
        remote("higher-old", "172.18.0.9", { bootId: BOOT, encryptionKey: 3 }),
        remote("higher-new", "172.18.0.8", { bootId: BOOT, encryptionKey: 4 }),
        remote("lower-old", "172.18.0.2", { bootId: BOOT, encryptionKey: 3 }),
        remote("no-boot", "172.18.0.7", {}),
      ],
    });
    assert.deepEqual(
      plan.peers.map((p) => [p.remote.name, p.keys?.current.spi ?? keys.current.spi]),
      [
        ["higher-old", 3],
        ["higher-new", 4],
        ["lower-old", 4],
      ],
    );
    assert.deepEqual(plan.skipped, [
      { node: "c1/no-boot", reason: "missing-boot-id", prefixes: ["10.9.7.0/24"] },
    ]);
  });

  it("IPsec backend: the probe decides on auto; a forced kernel backend without ESP drops, and says so", () => {
    const esp = { kernelEsp: true, detail: "rfc4106(gcm(aes)) ESP state accepted" };
    const noEsp = {
      kernelEsp: false,
      detail: "kernel has no ESP: Error: Requested AEAD algorithm not found.",
    };
    assert.deepEqual(
      [chooseIpsecBackend("auto", esp).backend, chooseIpsecBackend("auto", noEsp).backend],
      ["kernel-xfrm", "strongswan-libipsec"],
    );
    assert.match(chooseIpsecBackend("auto", noEsp).detail, /AEAD algorithm not found/);
    assert.equal(chooseIpsecBackend("libipsec", esp).backend, "strongswan-libipsec");
    const forced = chooseIpsecBackend("kernel-xfrm", noEsp);
    assert.deepEqual([forced.backend, forced.policiesOnly], ["kernel-xfrm", true]);
    assert.match(forced.problem ?? "", /without ESP.*dropped.*--ipsec-backend=auto/);
    const forcedOk = chooseIpsecBackend("kernel-xfrm", esp);
    assert.deepEqual([forcedOk.policiesOnly, forcedOk.problem], [false, undefined]);
  });
});
