import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { encryptionRoutes } from "../routes.js";
import { type EncryptionNode, planPeers } from "./peers.js";
import type { WireGuardPeerConfig } from "./uapi.js";

const key = (n: number) => Buffer.alloc(32, n).toString("base64");
const local = { cluster: "c1", name: "n1", publicKey: key(1) };
const PORT = 51871;

function node(
  cluster: string,
  name: string,
  ip: string,
  podCidr: string,
  publicKey?: string,
): EncryptionNode {
  return { cluster, name, nodeIp: ip, podCidrs: [podCidr], wireguardPublicKey: publicKey };
}

const n2 = node("c1", "n2", "172.20.0.2", "10.244.2.0/24", key(2));
const r1 = node("c2", "r1", "172.20.1.1", "10.245.1.0/24", key(3));

describe("WireGuard peer planning (pure)", () => {
  it("adds one peer per remote node of every cluster; the local node is skipped", () => {
    const plan = planPeers({
      local,
      nodes: [
        node("c1", "n1", "172.20.0.1", "10.244.1.0/24", key(1)),
        n2,
        { ...r1, podIps: ["10.245.1.7", "10.99.0.5"] },
      ],
      current: [],
      port: PORT,
    });
    assert.deepEqual(plan.added, ["c1/n2", "c2/r1"]);
    assert.deepEqual(plan.rejected, []);
    assert.deepEqual(
      plan.peers.map((p) => p.peer),
      [
        {
          publicKey: key(2),
          endpoint: "172.20.0.2:51871",
          allowedIps: ["10.244.2.0/24", "172.20.0.2/32"],
          persistentKeepaliveSeconds: 0,
        },
        // a pod IP inside the pod CIDR is redundant; one outside it is added as /32
        {
          publicKey: key(3),
          endpoint: "172.20.1.1:51871",
          allowedIps: ["10.245.1.0/24", "10.99.0.5/32", "172.20.1.1/32"],
          persistentKeepaliveSeconds: 0,
        },
      ],
    );
    // the node's address is accepted from the peer (its host's replies to our pods), not routed
    assert.deepEqual(
      plan.peers.map((p) => p.routed),
      [["10.244.2.0/24"], ["10.245.1.0/24", "10.99.0.5/32"]],
    );
  });

  it("is minimal: nothing to do when the device already matches, even in another order", () => {
    const current: WireGuardPeerConfig[] = [
      {
        publicKey: key(3),
        endpoint: "172.20.1.1:51871",
        allowedIps: ["172.20.1.1/32", "10.245.1.0/24"],
        persistentKeepaliveSeconds: 0,
      },
      {
        publicKey: key(2),
        endpoint: "172.20.0.2:51871",
        allowedIps: ["10.244.2.0/24", "172.20.0.2/32"],
        persistentKeepaliveSeconds: 0,
      },
    ];
    const plan = planPeers({ local, nodes: [r1, n2], current, port: PORT });
    assert.deepEqual(plan.changes, []);
  });

  it("updates a changed endpoint or prefix set and removes peers of nodes that left", () => {
    const current: WireGuardPeerConfig[] = [
      { publicKey: key(2), endpoint: "172.20.0.9:51871", allowedIps: ["10.244.2.0/24"] },
      { publicKey: key(9), endpoint: "172.20.0.99:51871", allowedIps: ["10.244.9.0/24"] },
    ];
    const plan = planPeers({ local, nodes: [n2], current, port: PORT });
    assert.deepEqual(plan.updated, ["c1/n2"]);
    assert.deepEqual(plan.removed, [key(9)]);
    assert.deepEqual(plan.changes[0], { kind: "remove", publicKey: key(9) });
    assert.equal(plan.changes[1].kind, "upsert");
  });

  it("rejects bad nodes with a reason, drops their prefixes, and leaves the others alone", () => {
    const nodes = [
      n2,
      node("c2", "nokey", "172.20.1.2", "10.245.2.0/24"),
      node("c2", "short", "172.20.1.3", "10.245.3.0/24", Buffer.alloc(16, 5).toString("base64")),
      node("c2", "garbage", "172.20.1.4", "10.245.4.0/24", "%%%"),
      node("c2", "dup", "172.20.1.5", "10.245.5.0/24", key(2)), // n2's key
      node("c2", "mine", "172.20.1.6", "10.245.6.0/24", key(1)), // this node's key
      node("c2", "badip", "not-an-ip", "10.245.7.0/24", key(7)),
      node("c2", "overlap", "172.20.1.8", "10.244.2.0/24", key(8)), // n2's pod CIDR
      r1,
    ];
    const plan = planPeers({ local, nodes, current: [], port: PORT });
    assert.deepEqual(plan.added, ["c1/n2", "c2/r1"]);
    assert.deepEqual(plan.rejected.map((r) => [r.node, r.reason]).sort(), [
      ["c2/badip", "invalid-address"],
      ["c2/dup", "duplicate-public-key"],
      ["c2/garbage", "invalid-public-key"],
      ["c2/mine", "own-public-key"],
      ["c2/nokey", "missing-public-key"],
      ["c2/overlap", "allowed-ip-conflict"],
      ["c2/short", "invalid-public-key"],
    ]);
    assert.match(plan.rejected.find((r) => r.node === "c2/short")?.message ?? "", /wrong-length/);
    assert.match(plan.rejected.find((r) => r.node === "c2/dup")?.message ?? "", /c1\/n2/);
    // n2's CIDR stays encrypted via n2, never blackholed because of the overlapping impostor
    assert.deepEqual(plan.dropPrefixes, [
      "10.245.2.0/24",
      "10.245.3.0/24",
      "10.245.4.0/24",
      "10.245.5.0/24",
      "10.245.6.0/24",
    ]);
  });

  it("a duplicate key stays with the node already configured with it", () => {
    const newcomer = node("a-first-by-name", "x", "172.20.9.9", "10.9.9.0/24", key(2));
    const current = [
      { publicKey: key(2), endpoint: "172.20.0.2:51871", allowedIps: ["10.244.2.0/24", "172.20.0.2/32"] },
    ];
    const plan = planPeers({ local, nodes: [newcomer, n2], current, port: PORT });
    assert.deepEqual(plan.changes, []);
    assert.deepEqual(
      plan.rejected.map((r) => r.node),
      ["a-first-by-name/x"],
    );
  });

  it("a peer that turns bad is removed from the device and its prefixes dropped", () => {
    const current = [{ publicKey: key(2), endpoint: "172.20.0.2:51871", allowedIps: ["10.244.2.0/24"] }];
    const plan = planPeers({ local, nodes: [{ ...n2, wireguardPublicKey: "" }], current, port: PORT });
    assert.deepEqual(plan.changes, [{ kind: "remove", publicKey: key(2) }]);
    assert.deepEqual(plan.dropPrefixes, ["10.244.2.0/24"]);
    assert.deepEqual(encryptionRoutes("wg0", [], plan.dropPrefixes), [
      { prefix: "10.244.2.0/24", type: "blackhole" },
    ]);
  });

  it("IPv6 endpoints are bracketed", () => {
    const plan = planPeers({
      local,
      nodes: [node("c1", "v6", "fd00::2", "fd10:2::/64", key(4))],
      current: [],
      port: PORT,
    });
    assert.equal(plan.peers[0].peer.endpoint, "[fd00::2]:51871");
  });

  it("routes: peers via the device, drops win over a peer route for the same prefix", () => {
    assert.deepEqual(encryptionRoutes("wg0", ["10.2.0.0/24", "10.3.0.5"], ["10.3.0.5/32"], "unreachable"), [
      { prefix: "10.2.0.0/24", dev: "wg0" },
      { prefix: "10.3.0.5/32", type: "unreachable" },
    ]);
  });
});
