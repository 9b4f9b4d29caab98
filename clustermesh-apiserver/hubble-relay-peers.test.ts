// The relay's peers from the watched Nodes and the connect-written ConfigMap.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { V1Node } from "@kubernetes/client-node";
import { agentHubbleServerName, relayServerName } from "../lib/api/hubble.js";
import { nodePeers, relayPeers } from "./hubble-relay-peers.js";

const tls = { ca: Buffer.from("ca"), cert: Buffer.from("cert"), key: Buffer.from("key") };
const node = (name: string, ip?: string): V1Node => ({
  metadata: { name },
  status: { addresses: ip ? [{ type: "InternalIP", address: ip }] : [] },
});

describe("hubble relay peers", () => {
  it("one agent per Node with an InternalIP, named <cluster>/<node>, checked for its hubble-grpc name", () => {
    const peers = nodePeers([node("w.2", "172.30.0.3"), node("cp", "fd00::2"), node("no-address")], {
      clusterName: "c1",
      agentPort: 4244,
      tls,
      serverName: agentHubbleServerName,
    });
    assert.deepEqual(
      peers.map((p) => [p.name, p.kind, p.target, p.tls?.serverName]),
      [
        ["c1/cp", "node", "[fd00::2]:4244", "cp.c1.hubble-grpc.cilium.io"],
        ["c1/w.2", "node", "172.30.0.3:4244", "w-2.c1.hubble-grpc.cilium.io"],
      ],
    );
  });

  it("other clusters' relays from the ConfigMap; bad entries are named and skipped", () => {
    const invalid: string[] = [];
    const peers = relayPeers(
      { c2: "172.30.0.4:32446", "Bad Name": "1.2.3.4:1", c3: "nowhere", c4: "10.0.0.1:99999" },
      {
        tls,
        serverName: relayServerName,
        onInvalid: (cluster, problem) => invalid.push(`${cluster}: ${problem}`),
      },
    );
    assert.deepEqual(
      peers.map((p) => [p.name, p.kind, p.target, p.tls?.serverName]),
      [["c2/relay", "relay", "172.30.0.4:32446", "c2.hubble-relay.cilium.io"]],
    );
    assert.equal(invalid.length, 3);
    assert.match(invalid.join("\n"), /Bad Name: key/);
    assert.match(invalid.join("\n"), /c3: "nowhere" is not host:port/);
  });

  it("refuses a remote relay without TLS", () => {
    const invalid: string[] = [];
    assert.deepEqual(
      relayPeers(
        { c2: "172.30.0.4:32446" },
        { serverName: relayServerName, onInvalid: (c) => invalid.push(c) },
      ),
      [],
    );
    assert.deepEqual(invalid, ["c2"]);
  });
});
