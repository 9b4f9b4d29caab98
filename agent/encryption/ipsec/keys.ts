/**
 * The IPsec key Secret (Cilium's `cilium-ipsec-keys`, key `keys`) and per-node-pair keys.
 *
 * Line formats (one key per line; the last line is the current key, earlier ones stay valid for
 * inbound traffic during a rotation):
 *   `<spi>[+] rfc4106(gcm(aes)) <hex key+salt> <icv bits>`          AEAD (key 16 or 32 bytes + 4 salt)
 *   `<spi>[+] <auth-algo> <hex auth key> <enc-algo> <hex enc key> [ip]`  legacy auth+enc
 * `+` asks for per-node-pair keys (mandatory in Cilium since v1.16), derived as Cilium does:
 *   SHA256(globalKey ‖ srcIP ‖ dstIP ‖ srcBootID[:36] ‖ dstBootID[:36]) truncated to the key length,
 *   SHA-512 when the key is longer than 32 bytes; IPv4 addresses as 4 bytes, IPv6 as 16. The OUT
 *   state A→B uses (A,B,bootA,bootB); B's IN state for it uses the same order, so both ends agree.
 */
import { createHash } from "node:crypto";
import { parseIp } from "../../../lib/cidr.js";

export const SPI_MIN = 1;
export const SPI_MAX = 15; // 4 bits of the packet mark in Cilium's layout
export const AEAD_ALGORITHM = "rfc4106(gcm(aes))";
const GCM_SALT_BYTES = 4;
const AEAD_KEY_BYTES = [16 + GCM_SALT_BYTES, 32 + GCM_SALT_BYTES];
const ICV_BITS = [64, 96, 128];
const AUTH_KEY_BYTES: Record<string, number> = {
  "hmac(sha1)": 20,
  "hmac(sha256)": 32,
  "hmac(sha512)": 64,
};
const ENC_KEY_BYTES: Record<string, number[]> = { "cbc(aes)": [16, 24, 32] };
const BOOT_ID_BYTES = 36;

export class IpsecKeyError extends Error {
  constructor(
    readonly line: number,
    detail: string,
  ) {
    super(`IPsec key secret, line ${line}: ${detail}`);
    this.name = "IpsecKeyError";
  }
}

export type IpsecAlgorithm =
  | { kind: "aead"; algorithm: string; key: Buffer; icvBits: number }
  | { kind: "auth-enc"; authAlgorithm: string; authKey: Buffer; encAlgorithm: string; encKey: Buffer };

/** One key of the Secret. Key bytes never appear in JSON, strings or inspect output. */
export class IpsecKey {
  constructor(
    readonly spi: number,
    readonly perNodePair: boolean,
    readonly algorithm: IpsecAlgorithm,
  ) {}

  /** Key length in bytes as used by strongSwan proposals (AEAD key without the salt). */
  get aesKeyBits(): number {
    const bytes =
      this.algorithm.kind === "aead"
        ? this.algorithm.key.length - GCM_SALT_BYTES
        : this.algorithm.encKey.length;
    return bytes * 8;
  }

  /** The key for traffic from `src` to `dst` (derived when perNodePair, else this one). */
  forPair(src: NodeKeyInput, dst: NodeKeyInput): IpsecKey {
    if (!this.perNodePair) return this;
    const derive = (key: Buffer) => deriveNodePairKey(key, src, dst);
    const algorithm: IpsecAlgorithm =
      this.algorithm.kind === "aead"
        ? { ...this.algorithm, key: derive(this.algorithm.key) }
        : {
            ...this.algorithm,
            authKey: derive(this.algorithm.authKey),
            encKey: derive(this.algorithm.encKey),
          };
    return new IpsecKey(this.spi, true, algorithm);
  }

  toJSON(): { spi: number; perNodePair: boolean; algorithm: string } {
    const { algorithm } = this;
    const name =
      algorithm.kind === "aead"
        ? algorithm.algorithm
        : `${algorithm.authAlgorithm}+${algorithm.encAlgorithm}`;
    return { spi: this.spi, perNodePair: this.perNodePair, algorithm: name };
  }

  toString(): string {
    return `IpsecKey(${JSON.stringify(this.toJSON())})`;
  }

  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

export interface IpsecKeySet {
  /** Used for outbound traffic: the last line of the Secret. */
  current: IpsecKey;
  /** Every key, current included, accepted for inbound traffic. */
  all: IpsecKey[];
}

function parseHex(line: number, what: string, text: string): Buffer {
  const hex = text.startsWith("0x") ? text.slice(2) : text;
  if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length % 2 !== 0) {
    throw new IpsecKeyError(line, `${what} is not an even number of hex digits`);
  }
  return Buffer.from(hex, "hex");
}

function parseSpi(line: number, text: string): { spi: number; perNodePair: boolean } {
  const match = /^(\d+)(\+?)$/.exec(text);
  if (!match) throw new IpsecKeyError(line, `SPI "${text}" is not a number (optionally followed by "+")`);
  const spi = Number(match[1]);
  if (spi < SPI_MIN || spi > SPI_MAX) {
    throw new IpsecKeyError(line, `SPI ${spi} is out of range ${SPI_MIN}..${SPI_MAX}`);
  }
  return { spi, perNodePair: match[2] === "+" };
}

export function parseIpsecKeyLine(text: string, line = 1): IpsecKey {
  const fields = text.trim().split(/\s+/);
  if (fields.length < 4) {
    throw new IpsecKeyError(
      line,
      `expected "<spi>[+] ${AEAD_ALGORITHM} <hex key> <icv bits>" or "<spi>[+] <auth-algo> <auth-key> <enc-algo> <enc-key>", got ${fields.length} fields`,
    );
  }
  const { spi, perNodePair } = parseSpi(line, fields[0]);
  if (fields[1] === AEAD_ALGORITHM) {
    if (fields.length !== 4)
      throw new IpsecKeyError(line, `the AEAD form has 4 fields, got ${fields.length}`);
    const key = parseHex(line, "the AEAD key", fields[2]);
    if (!AEAD_KEY_BYTES.includes(key.length)) {
      const problem = key.length < AEAD_KEY_BYTES[0] ? "too short" : "of the wrong length";
      throw new IpsecKeyError(
        line,
        `the AEAD key is ${problem}: ${key.length} bytes, want 20 (AES-128 + 4-byte salt) or 36 (AES-256 + salt)`,
      );
    }
    const icvBits = Number(fields[3]);
    if (!ICV_BITS.includes(icvBits))
      throw new IpsecKeyError(line, `ICV length "${fields[3]}" must be one of ${ICV_BITS.join(", ")}`);
    return new IpsecKey(spi, perNodePair, { kind: "aead", algorithm: AEAD_ALGORITHM, key, icvBits });
  }
  if (fields.length !== 5 && fields.length !== 6) {
    throw new IpsecKeyError(
      line,
      `unknown algorithm "${fields[1]}" (want ${AEAD_ALGORITHM} or an auth+enc pair)`,
    );
  }
  const [, authAlgorithm, authHex, encAlgorithm, encHex] = fields;
  const authBytes = AUTH_KEY_BYTES[authAlgorithm];
  if (authBytes === undefined) {
    throw new IpsecKeyError(
      line,
      `unknown auth algorithm "${authAlgorithm}" (want ${Object.keys(AUTH_KEY_BYTES).join(", ")})`,
    );
  }
  const authKey = parseHex(line, "the auth key", authHex);
  if (authKey.length < authBytes) {
    throw new IpsecKeyError(
      line,
      `the auth key is too short: ${authKey.length} bytes, ${authAlgorithm} wants ${authBytes}`,
    );
  }
  const encBytes = ENC_KEY_BYTES[encAlgorithm];
  if (encBytes === undefined) {
    throw new IpsecKeyError(
      line,
      `unknown encryption algorithm "${encAlgorithm}" (want ${Object.keys(ENC_KEY_BYTES).join(", ")})`,
    );
  }
  const encKey = parseHex(line, "the encryption key", encHex);
  if (!encBytes.includes(encKey.length)) {
    throw new IpsecKeyError(
      line,
      `the encryption key is ${encKey.length} bytes, ${encAlgorithm} wants ${encBytes.join(" or ")}`,
    );
  }
  return new IpsecKey(spi, perNodePair, { kind: "auth-enc", authAlgorithm, authKey, encAlgorithm, encKey });
}

/** Parses the whole Secret value. Comments (#) and blank lines are ignored; SPIs must be distinct. */
export function parseIpsecKeys(text: string): IpsecKeySet {
  const all: IpsecKey[] = [];
  text.split("\n").forEach((raw, index) => {
    const content = raw.replace(/#.*/, "").trim();
    if (!content) return;
    const key = parseIpsecKeyLine(content, index + 1);
    if (all.some((k) => k.spi === key.spi))
      throw new IpsecKeyError(index + 1, `SPI ${key.spi} appears twice`);
    all.push(key);
  });
  const current = all.at(-1);
  if (!current) throw new IpsecKeyError(0, "no key in the secret");
  return { current, all };
}

export interface NodeKeyInput {
  ip: string;
  bootId: string;
}

function ipBytes(ip: string): Buffer {
  const { family, value } = parseIp(ip);
  const bytes = Buffer.alloc(family === 4 ? 4 : 16);
  let rest = value;
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return bytes;
}

/** Cilium's per-node-pair key (see the file comment). Throws on a boot ID shorter than 36 bytes. */
export function deriveNodePairKey(globalKey: Buffer, src: NodeKeyInput, dst: NodeKeyInput): Buffer {
  for (const node of [src, dst]) {
    if (Buffer.byteLength(node.bootId) < BOOT_ID_BYTES) {
      throw new Error(`node ${node.ip}: boot ID "${node.bootId}" is shorter than ${BOOT_ID_BYTES} bytes`);
    }
  }
  const input = Buffer.concat([
    globalKey,
    ipBytes(src.ip),
    ipBytes(dst.ip),
    Buffer.from(src.bootId).subarray(0, BOOT_ID_BYTES),
    Buffer.from(dst.bootId).subarray(0, BOOT_ID_BYTES),
  ]);
  const digest = createHash(globalKey.length <= 32 ? "sha256" : "sha512")
    .update(input)
    .digest();
  return digest.subarray(0, globalKey.length);
}
