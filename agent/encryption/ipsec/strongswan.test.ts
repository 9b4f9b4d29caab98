import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseIpsecKeys } from "./keys.js";
import {
  isInitiator,
  pairPsk,
  parseListSas,
  strongSwanConf,
  strongSwanPaths,
  swanctlConf,
} from "./strongswan.js";
import type { XfrmNode } from "./xfrm.js";

const boot = (c: string) => `${c.repeat(8)}-${c.repeat(4)}-${c.repeat(4)}-${c.repeat(4)}-${c.repeat(12)}`;
const A: XfrmNode = { node: "c1/a", ip: "172.31.250.1", podCidrs: ["10.250.1.0/24"], bootId: boot("a") };
const B: XfrmNode = { node: "c2/b", ip: "172.31.250.2", podCidrs: ["10.250.2.0/24"], bootId: boot("b") };
const keys = parseIpsecKeys(`3+ rfc4106(gcm(aes)) ${"0102030405060708090a0b0c0d0e0f1011121314"} 128`);

describe("strongSwan (kernel-libipsec) configuration (pure)", () => {
  it("per-instance paths: vici socket and log in the instance dir, never charon's global defaults", () => {
    const conf = strongSwanConf(strongSwanPaths("/run/cm/x"));
    assert.match(conf, /socket = unix:\/\/\/run\/cm\/x\/charon\.vici/);
    assert.match(conf, /path = \/run\/cm\/x\/charon\.log/);
    assert.match(conf, /kernel-libipsec/);
    assert.match(conf, /make_before_break = yes/);
    // the agent routes only the remote pod CIDRs to ipsec0; charon routing the selectors would
    // send the peer's own address (IKE, ESP) into the tunnel
    assert.match(conf, /routing_table_prio = 32767/);
    assert.match(conf, /allow_peer_ts = yes/);
    assert.ok(!conf.includes("/var/run/charon"));
  });

  it("both ends derive the same PSK for their pair (canonical order); exactly one initiates", () => {
    assert.equal(pairPsk(keys.current, A, B), pairPsk(keys.current, B, A));
    assert.match(pairPsk(keys.current, A, B), /^0x[0-9a-f]{40}$/);
    assert.notEqual(pairPsk(keys.current, A, B), "0x0102030405060708090a0b0c0d0e0f1011121314");
    assert.equal(isInitiator(A, B), true);
    assert.equal(isInitiator(B, A), false);
  });

  it("one connection per remote node: IKEv2/PSK by node IP, AES-GCM-16 ESP for the pod CIDRs and node addresses", () => {
    const text = swanctlConf(A, [B], keys);
    for (const line of [
      "n-c2-b {",
      "version = 2",
      `remote_addrs = ${B.ip}`,
      "auth = psk",
      `id = ${A.ip}`,
      // the node addresses too: a node's reply to a remote pod that called it is routed to ipsec0
      `local_ts = 10.250.1.0/24,${A.ip}/32`,
      `remote_ts = 10.250.2.0/24,${B.ip}/32`,
      "esp_proposals = aes128gcm16",
      "mode = tunnel",
      `secret = ${pairPsk(keys.current, A, B)}`,
    ]) {
      assert.ok(text.includes(line), `missing "${line}" in\n${text}`);
    }
  });

  it("parses swanctl --list-sas", () => {
    const counts = parseListSas(`n-c2-b: #1, ESTABLISHED, IKEv2, 1f2e3d4c5b6a7988_i* 8877665544332211_r
  local  '172.31.250.1' @ 172.31.250.1[4500]
  remote '172.31.250.2' @ 172.31.250.2[4500]
  AES_GCM_16-128/PRF_HMAC_SHA2_256/ECP_256
  established 3s ago, rekeying in 14000s
  pods: #1, reqid 1, INSTALLED, TUNNEL-in-UDP, ESP:AES_GCM_16-128
    installed 3s ago, rekeying in 3000s, expires in 3600s
    in  c3a1b2d4,    840 bytes,    10 packets,     1s ago
    out cf00aa11,    900 bytes,    10 packets,     1s ago
    local  10.250.1.0/24
    remote 10.250.2.0/24
`);
    assert.deepEqual(counts, {
      ike: 1,
      child: 1,
      byConnection: { "n-c2-b": { ike: 1, child: 1, spis: ["in:c3a1b2d4", "out:cf00aa11"] } },
    });
  });
});
