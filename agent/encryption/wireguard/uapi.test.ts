import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatSetRequest, parseGetResponse, UapiError } from "./uapi.js";
import { parseWgDump, wgSetArgv } from "./wg-tool.js";

const keyA = Buffer.alloc(32, 0xaa).toString("base64");
const keyB = Buffer.alloc(32, 0xbb).toString("base64");
const hexA = "aa".repeat(32);
const hexB = "bb".repeat(32);

describe("WireGuard UAPI protocol", () => {
  it("formats a set request: device settings, upsert replacing allowed IPs, removal", () => {
    const text = formatSetRequest({ privateKeyHex: "11".repeat(32), listenPort: 51871 }, [
      {
        kind: "upsert",
        peer: { publicKey: keyA, endpoint: "172.20.0.2:51871", allowedIps: ["10.2.0.0/24", "10.9.9.9/32"] },
      },
      { kind: "remove", publicKey: keyB },
    ]);
    assert.equal(
      text,
      [
        "set=1",
        `private_key=${"11".repeat(32)}`,
        "listen_port=51871",
        `public_key=${hexA}`,
        "endpoint=172.20.0.2:51871",
        "persistent_keepalive_interval=0",
        "replace_allowed_ips=true",
        "allowed_ip=10.2.0.0/24",
        "allowed_ip=10.9.9.9/32",
        `public_key=${hexB}`,
        "remove=true",
        "",
        "",
      ].join("\n"),
    );
  });

  it("parses a get answer with handshake and transfer counters, without keeping the private key", () => {
    const state = parseGetResponse(
      "wgA",
      [
        `private_key=${"22".repeat(32)}`,
        "listen_port=51871",
        `public_key=${hexA}`,
        `preshared_key=${"00".repeat(32)}`,
        "protocol_version=1",
        "endpoint=172.20.0.2:51871",
        "last_handshake_time_sec=1700000000",
        "last_handshake_time_nsec=500000000",
        "tx_bytes=1000",
        "rx_bytes=2000",
        "persistent_keepalive_interval=25",
        "allowed_ip=10.2.0.0/24",
        `public_key=${hexB}`,
        "last_handshake_time_sec=0",
        "last_handshake_time_nsec=0",
        "tx_bytes=0",
        "rx_bytes=0",
        "persistent_keepalive_interval=0",
        "errno=0",
        "",
        "",
      ].join("\n"),
    );
    assert.deepEqual(state, {
      hasPrivateKey: true,
      listenPort: 51871,
      peers: [
        {
          publicKey: keyA,
          endpoint: "172.20.0.2:51871",
          allowedIps: ["10.2.0.0/24"],
          persistentKeepaliveSeconds: 25,
          lastHandshakeMs: 1700000000500,
          rxBytes: 2000,
          txBytes: 1000,
        },
        {
          publicKey: keyB,
          allowedIps: [],
          persistentKeepaliveSeconds: 0,
          lastHandshakeMs: 0,
          rxBytes: 0,
          txBytes: 0,
        },
      ],
    });
    assert.ok(!JSON.stringify(state).includes("22".repeat(32)));
  });

  it("reports a non-zero errno", () => {
    assert.throws(
      () => parseGetResponse("wgA", "errno=-22\n\n"),
      (e: unknown) => e instanceof UapiError && e.errno === -22,
    );
  });

  it("kernel path: wg set argv and wg show dump parsing", () => {
    assert.deepEqual(
      wgSetArgv("wg0", { listenPort: 51871, privateKeyHex: "11".repeat(32) }, [
        {
          kind: "upsert",
          peer: { publicKey: keyA, endpoint: "172.20.0.2:51871", allowedIps: ["10.2.0.0/24"] },
        },
        { kind: "remove", publicKey: keyB },
      ]),
      [
        "wg",
        "set",
        "wg0",
        "listen-port",
        "51871",
        "private-key",
        "/dev/stdin",
        "peer",
        keyA,
        "endpoint",
        "172.20.0.2:51871",
        "persistent-keepalive",
        "0",
        "allowed-ips",
        "10.2.0.0/24",
        "peer",
        keyB,
        "remove",
      ],
    );
    const state = parseWgDump(
      `PRIV\tPUB\t51871\toff\n${keyA}\t(none)\t172.20.0.2:51871\t10.2.0.0/24,10.9.0.1/32\t1700000000\t10\t20\toff\n`,
    );
    assert.equal(state.listenPort, 51871);
    assert.deepEqual(state.peers[0].allowedIps, ["10.2.0.0/24", "10.9.0.1/32"]);
    assert.equal(state.peers[0].lastHandshakeMs, 1700000000000);
  });
});
