import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { inspect } from "node:util";
import {
  checkWireGuardKey,
  WIREGUARD_KEY_FILE,
  WireGuardKeyPair,
  wireGuardKeyFromHex,
  wireGuardKeyToHex,
} from "./keys.js";

const dir = mkdtempSync(join(tmpdir(), "cm-wgkeys-"));
after(() => rmSync(dir, { recursive: true, force: true }));

describe("WireGuard keys", () => {
  it("derives the same public key as `wg pubkey` (RFC 7748 x25519)", () => {
    // Private key from RFC 7748 §6.1 (Alice), base64; its public key is 8520f009…
    const pair = WireGuardKeyPair.fromPrivateBase64(
      Buffer.from("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", "hex").toString(
        "base64",
      ),
    );
    assert.equal(pair.publicKeyHex(), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    const wg = spawnSync("wg", ["pubkey"], { input: `${pair.privateKeyBase64()}\n`, encoding: "utf8" });
    if (wg.status === 0) assert.equal(wg.stdout.trim(), pair.publicKey);
  });

  it("creates a 0600 key file once and reuses it across restarts", () => {
    const first = WireGuardKeyPair.loadOrCreate(dir);
    const path = join(dir, WIREGUARD_KEY_FILE);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const second = WireGuardKeyPair.loadOrCreate(dir);
    assert.equal(second.publicKey, first.publicKey);
    assert.equal(checkWireGuardKey(first.publicKey), undefined);
    assert.equal(readFileSync(path, "utf8").trim(), first.privateKeyBase64());
  });

  it("refuses a malformed key file instead of replacing the node's identity", () => {
    const bad = mkdtempSync(join(dir, "bad-"));
    writeFileSync(join(bad, WIREGUARD_KEY_FILE), "c2hvcnQ=\n", { mode: 0o600 });
    assert.throws(() => WireGuardKeyPair.loadOrCreate(bad), /wrong-length.*remove it/);
  });

  it("never shows the private key in JSON, strings or inspect", () => {
    const pair = WireGuardKeyPair.generate();
    const secret = pair.privateKeyBase64();
    for (const text of [
      JSON.stringify({ pair }),
      String(pair),
      inspect(pair),
      inspect({ pair }, { depth: 5 }),
    ]) {
      assert.ok(!text.includes(secret), text);
      assert.ok(!text.includes(pair.privateKeyHex()), text);
    }
    assert.deepEqual(JSON.parse(JSON.stringify(pair)), {
      publicKey: pair.publicKey,
      privateKey: "[redacted]",
    });
  });

  it("checks and converts keys", () => {
    assert.equal(checkWireGuardKey(undefined), "missing");
    assert.equal(checkWireGuardKey("not base64!"), "not-base64");
    assert.equal(checkWireGuardKey(Buffer.alloc(31).toString("base64")), "wrong-length");
    const key = Buffer.alloc(32, 7).toString("base64");
    assert.equal(wireGuardKeyFromHex(wireGuardKeyToHex(key)), key);
    assert.throws(() => wireGuardKeyToHex("AAAA"), /wrong-length/);
  });
});
