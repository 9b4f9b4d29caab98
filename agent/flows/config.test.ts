// The agent's flow/Hubble flags.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HubbleConfigError, parseHubbleFlags } from "./config.js";

describe("hubble flags", () => {
  it("defaults: flows on, the socket beside the agent's, 4096 recent flows, no TCP listener", () => {
    assert.deepEqual(parseHubbleFlags({}, "/var/run/clustermesh"), {
      flows: "on",
      socketPath: "/var/run/clustermesh/hubble.sock",
      bufferSize: 4096,
    });
  });

  it("listener, buffer and mutual TLS", () => {
    const config = parseHubbleFlags(
      {
        "hubble-flows": "all",
        "hubble-listen-address": ":4244",
        "hubble-flow-buffer": "100",
        "hubble-tls-ca": "ca.pem",
        "hubble-tls-cert": "c.pem",
        "hubble-tls-key": "k.pem",
      },
      "/run",
    );
    assert.deepEqual(
      [config.flows, config.listenAddress, config.bufferSize, config.tls?.key],
      ["all", ":4244", 100, "k.pem"],
    );
  });

  it("bad values name the flag", () => {
    for (const [flag, value] of [
      ["hubble-flows", "maybe"],
      ["hubble-flow-buffer", "0"],
      ["hubble-listen-address", "4244"],
      ["hubble-tls-ca", "ca.pem"],
    ]) {
      assert.throws(
        () => parseHubbleFlags({ [flag]: value }, "/run"),
        (error: unknown) => error instanceof HubbleConfigError && error.message.includes(`--${flag}`),
        flag,
      );
    }
  });
});
