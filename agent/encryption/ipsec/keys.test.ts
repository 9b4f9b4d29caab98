import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { inspect } from "node:util";
import { deriveNodePairKey, IpsecKeyError, parseIpsecKeyLine, parseIpsecKeys } from "./keys.js";

const KEY20 = "0102030405060708090a0b0c0d0e0f1011121314";
const bootA = "570d3fd1-93db-4862-ba99-6a3c2c10c38f";
const bootB = "1f3c2e4d-5a6b-4c7d-8e9f-a0b1c2d3e4f5";
const A = { ip: "172.31.250.1", bootId: bootA };
const B = { ip: "172.31.250.2", bootId: bootB };

function fails(text: string, pattern: RegExp) {
  assert.throws(
    () => parseIpsecKeys(text),
    (e: unknown) => e instanceof IpsecKeyError && pattern.test(e.message),
  );
}

describe("IPsec key secret", () => {
  it("parses the AEAD line, with and without per-node-pair keys", () => {
    const key = parseIpsecKeyLine(`3+ rfc4106(gcm(aes)) ${KEY20} 128`);
    assert.equal(key.spi, 3);
    assert.equal(key.perNodePair, true);
    assert.equal(key.aesKeyBits, 128);
    assert.deepEqual(key.algorithm.kind === "aead" && key.algorithm.key.toString("hex"), KEY20);
    assert.equal(parseIpsecKeyLine(`15 rfc4106(gcm(aes)) 0x${"ab".repeat(36)} 128`).aesKeyBits, 256);
    assert.equal(parseIpsecKeyLine(`15 rfc4106(gcm(aes)) 0x${"ab".repeat(36)} 128`).perNodePair, false);
  });

  it("parses the legacy auth+enc line", () => {
    const key = parseIpsecKeyLine(`1 hmac(sha256) ${"11".repeat(32)} cbc(aes) ${"22".repeat(16)}`);
    assert.equal(key.algorithm.kind, "auth-enc");
    assert.deepEqual(key.toJSON(), { spi: 1, perNodePair: false, algorithm: "hmac(sha256)+cbc(aes)" });
  });

  it("several lines: the last is current, all are accepted inbound", () => {
    const set = parseIpsecKeys(
      `# rotation\n3+ rfc4106(gcm(aes)) ${KEY20} 128\n\n4+ rfc4106(gcm(aes)) ${"99".repeat(20)} 128\n`,
    );
    assert.equal(set.current.spi, 4);
    assert.deepEqual(
      set.all.map((k) => k.spi),
      [3, 4],
    );
  });

  it("errors name the line and what is wrong", () => {
    fails("", /no key/);
    fails(`0+ rfc4106(gcm(aes)) ${KEY20} 128`, /line 1: SPI 0 is out of range 1\.\.15/);
    fails(`16 rfc4106(gcm(aes)) ${KEY20} 128`, /SPI 16 is out of range/);
    fails(`x rfc4106(gcm(aes)) ${KEY20} 128`, /SPI "x" is not a number/);
    fails("3+ rfc4106(gcm(aes)) 0102030405060708 128", /too short: 8 bytes/);
    fails(`3+ rfc4106(gcm(aes)) ${"ab".repeat(24)} 128`, /wrong length: 24 bytes/);
    fails(`3+ rfc4106(gcm(aes)) ${KEY20.slice(1)} 128`, /not an even number of hex digits/);
    fails(`3+ rfc4106(gcm(aes)) zz${KEY20.slice(2)} 128`, /not an even number of hex digits/);
    fails(`3+ rfc4106(gcm(aes)) ${KEY20} 100`, /ICV length "100"/);
    fails(`3+ rfc4106(gcm(aes)) ${KEY20}`, /expected .* got 3 fields/);
    fails(
      `3 hmac(md5) ${"11".repeat(16)} cbc(aes) ${"22".repeat(16)}`,
      /unknown auth algorithm "hmac\(md5\)"/,
    );
    fails(`3 hmac(sha256) ${"11".repeat(8)} cbc(aes) ${"22".repeat(16)}`, /auth key is too short/);
    fails(`3 hmac(sha256) ${"11".repeat(32)} cbc(aes) ${"22".repeat(5)}`, /encryption key is 5 bytes/);
    fails(
      `3 rfc4106(gcm(aes)) ${KEY20} 128\n3 rfc4106(gcm(aes)) ${KEY20} 128`,
      /line 2: SPI 3 appears twice/,
    );
  });

  it("never shows key bytes", () => {
    const key = parseIpsecKeyLine(`3+ rfc4106(gcm(aes)) ${KEY20} 128`);
    for (const text of [JSON.stringify({ key }), String(key), inspect({ key })])
      assert.ok(!text.includes(KEY20), text);
  });
});

describe("per-node-pair keys (Cilium's derivation), fixed vectors computed with Python hashlib", () => {
  const global = Buffer.from(KEY20, "hex");

  it("SHA-256 over key ‖ srcIP ‖ dstIP ‖ srcBoot ‖ dstBoot, truncated to the key length", () => {
    assert.equal(deriveNodePairKey(global, A, B).toString("hex"), "7b9e9781f39d5512cf92e12df860aa0832f08232");
    assert.equal(deriveNodePairKey(global, B, A).toString("hex"), "1686f5fc4b6fec2332cd97f00eb72a8ab86a808a");
  });

  it("SHA-512 for keys longer than 32 bytes; IPv6 as 16 bytes; boot IDs cut at 36", () => {
    const long = Buffer.from(Array.from({ length: 36 }, (_, i) => i + 1));
    assert.equal(
      deriveNodePairKey(long, A, B).toString("hex"),
      "b827bb54efa39708326e06143b9bc4b9e578f1df46fd04f92b2c6a5dcb685a577f4a424e",
    );
    assert.equal(
      deriveNodePairKey(global, { ip: "fd00::1", bootId: bootA }, { ip: "fd00::2", bootId: bootB }).toString(
        "hex",
      ),
      "e4d79e6fa20b4e41c1182d2cc7e2cdbaa6a17c16",
    );
    assert.equal(
      deriveNodePairKey(global, { ...A, bootId: `${bootA}-and-more` }, B).toString("hex"),
      "7b9e9781f39d5512cf92e12df860aa0832f08232",
    );
  });

  it("A's OUT key equals B's IN key for A→B; a short boot ID is an error", () => {
    const key = parseIpsecKeyLine(`3+ rfc4106(gcm(aes)) ${KEY20} 128`);
    const outOnA = key.forPair(A, B);
    const inOnB = key.forPair(A, B);
    assert.deepEqual(outOnA.algorithm, inOnB.algorithm);
    assert.notDeepEqual(key.forPair(B, A).algorithm, outOnA.algorithm);
    assert.equal(parseIpsecKeyLine(`3 rfc4106(gcm(aes)) ${KEY20} 128`).forPair(A, B).algorithm.kind, "aead");
    assert.throws(() => deriveNodePairKey(global, { ...A, bootId: "short" }, B), /shorter than 36/);
  });
});
