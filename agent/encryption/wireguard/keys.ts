/**
 * The node's WireGuard key pair: Curve25519 (x25519) raw 32-byte keys, base64 as `wg` and the node
 * record (`WireguardPubKey`) spell them, hex as the UAPI protocol wants them. The private key lives
 * only in a 0600 file under the agent's state dir and in this object; it is reused across restarts
 * so remote nodes keep a valid peer entry, and it never reaches a log line or the API (toJSON and
 * inspect show only the public key).
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeSync,
} from "node:fs";
import { dirname, join } from "node:path";

export const WIREGUARD_KEY_BYTES = 32;
export const WIREGUARD_KEY_FILE = "wireguard.key";

// DER prefixes of PKCS#8 / SPKI x25519 keys: the raw 32 bytes follow them.
const PKCS8_X25519_PREFIX = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519_PREFIX = Buffer.from("302a300506032b656e032100", "hex");

export type WireGuardKeyError = "missing" | "not-base64" | "wrong-length";

/** Why a base64 public key is unusable, or undefined when it is a valid 32-byte key. */
export function checkWireGuardKey(base64: string | undefined | null): WireGuardKeyError | undefined {
  if (!base64) return "missing";
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || base64.length % 4 !== 0) return "not-base64";
  if (Buffer.from(base64, "base64").length !== WIREGUARD_KEY_BYTES) return "wrong-length";
  return undefined;
}

export function wireGuardKeyToHex(base64: string): string {
  const error = checkWireGuardKey(base64);
  if (error) throw new Error(`invalid WireGuard key (${error})`);
  return Buffer.from(base64, "base64").toString("hex");
}

export function wireGuardKeyFromHex(hex: string): string {
  if (!/^[0-9a-f]{64}$/i.test(hex)) throw new Error("invalid WireGuard hex key (want 64 hex digits)");
  return Buffer.from(hex, "hex").toString("base64");
}

function rawPrivate(key: KeyObject): Buffer {
  return (key.export({ format: "der", type: "pkcs8" }) as Buffer).subarray(PKCS8_X25519_PREFIX.length);
}

function rawPublic(key: KeyObject): Buffer {
  return (key.export({ format: "der", type: "spki" }) as Buffer).subarray(SPKI_X25519_PREFIX.length);
}

export class WireGuardKeyPair {
  readonly #privateKey: Buffer;
  readonly publicKey: string;

  private constructor(privateKey: Buffer) {
    if (privateKey.length !== WIREGUARD_KEY_BYTES) throw new Error("WireGuard private key must be 32 bytes");
    this.#privateKey = Buffer.from(privateKey);
    const keyObject = createPrivateKey({
      key: Buffer.concat([PKCS8_X25519_PREFIX, privateKey]),
      format: "der",
      type: "pkcs8",
    });
    this.publicKey = rawPublic(createPublicKey(keyObject)).toString("base64");
  }

  static generate(): WireGuardKeyPair {
    return new WireGuardKeyPair(rawPrivate(generateKeyPairSync("x25519").privateKey));
  }

  /** From a base64 private key as `wg genkey` prints it. */
  static fromPrivateBase64(base64: string): WireGuardKeyPair {
    const error = checkWireGuardKey(base64.trim());
    if (error) throw new Error(`invalid WireGuard private key (${error})`);
    return new WireGuardKeyPair(Buffer.from(base64.trim(), "base64"));
  }

  /**
   * Reads `<stateDir>/wireguard.key`, or creates it (0600, written atomically) when absent. A file
   * that exists but is malformed is an error, not silently replaced: replacing the key would
   * invalidate this node's peer entry on every other node until they relearn it.
   */
  static loadOrCreate(stateDir: string): WireGuardKeyPair {
    const path = join(stateDir, WIREGUARD_KEY_FILE);
    if (existsSync(path)) {
      if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600);
      try {
        return WireGuardKeyPair.fromPrivateBase64(readFileSync(path, "utf8"));
      } catch (error) {
        throw new Error(`${path}: ${(error as Error).message}; remove it to generate a new key pair`, {
          cause: error,
        });
      }
    }
    const pair = WireGuardKeyPair.generate();
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const temporary = `${path}.tmp-${process.pid}`;
    const fd = openSync(temporary, "w", 0o600);
    try {
      writeSync(fd, `${pair.#privateKey.toString("base64")}\n`);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
    return pair;
  }

  /** Hex private key for the UAPI `private_key=` line. Only the UAPI client should call this. */
  privateKeyHex(): string {
    return this.#privateKey.toString("hex");
  }

  /** Base64 private key, for `wg set … private-key <file>` on the kernel path. */
  privateKeyBase64(): string {
    return this.#privateKey.toString("base64");
  }

  publicKeyHex(): string {
    return wireGuardKeyToHex(this.publicKey);
  }

  toJSON(): { publicKey: string; privateKey: "[redacted]" } {
    return { publicKey: this.publicKey, privateKey: "[redacted]" };
  }

  toString(): string {
    return `WireGuardKeyPair(${this.publicKey})`;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}
