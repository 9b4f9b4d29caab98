// The clustermesh-apiserver's relay flags: off by default; on, it serves and names a missing peer.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Command } from "commander";
import { HubbleClient } from "../lib/hubble/client.js";
import { addHubbleRelayOptions, type HubbleRelayFlags, startHubbleRelay } from "./hubble-relay.js";

const parse = (...args: string[]) =>
  addHubbleRelayOptions(new Command().exitOverride())
    .parse(args, { from: "user" })
    .opts() as HubbleRelayFlags;

describe("clustermesh-apiserver Hubble relay", () => {
  it("is off without --hubble-relay-address", async () => {
    assert.equal(await startHubbleRelay(parse()), undefined);
  });

  it("refuses a peer without a name, and half the TLS files", async () => {
    assert.throws(() => parse("--hubble-relay-peer", "localhost:4244"), /name/);
    await assert.rejects(
      startHubbleRelay(parse("--hubble-relay-address", "127.0.0.1:0", "--hubble-relay-tls-ca", "ca.pem")),
      /go together/,
    );
  });

  it("serves, naming the peer it cannot reach", async () => {
    const relay = await startHubbleRelay(
      parse(
        "--hubble-relay-address",
        "127.0.0.1:0",
        "--hubble-relay-peer",
        "c1/gone=unix:/nonexistent/hubble.sock",
      ),
    );
    assert.ok(relay);
    const client = HubbleClient.connect(`127.0.0.1:${relay.port}`);
    try {
      const status = await client.serverStatus();
      assert.deepEqual(status.unavailable_nodes, ["c1/gone"]);
      assert.equal(status.num_connected_nodes?.value ?? 0, 0);
    } finally {
      client.close();
      await relay.close();
    }
  });
});
