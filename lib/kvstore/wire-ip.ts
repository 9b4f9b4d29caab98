/**
 * IPs and CIDRs as Go's net.IP / net.IPMask / Cilium's cidr.CIDR put them in JSON. Pure.
 *   net.IP      → text ("10.0.0.1", "fd00::1"), nil → ""
 *   net.IPMask  → base64 of the mask bytes (4 for IPv4, 16 for IPv6), nil → null
 *   cidr.CIDR   → object {"IP": "<network>", "Mask": "<base64 mask>"} (the only form Cilium decodes)
 */
import { formatCidr, formatIp, parseCidr, parseIp } from "../cidr.js";
import { InvalidEntryError } from "./errors.js";

export interface LegacyCidr {
  IP: string;
  Mask: string;
}

/** Canonical text of an IP (Go's String()), or throws a bad-ip error naming `what`. */
export function canonicalIp(key: string, what: string, text: string): string {
  if (text.includes("%")) throw new InvalidEntryError(key, "bad-ip", `${what} "${text}" has a zone`);
  try {
    const { family, value } = parseIp(text);
    return formatIp(family, value);
  } catch {
    throw new InvalidEntryError(key, "bad-ip", `${what} "${text}" is not an IP address`);
  }
}

export function isIp(text: string): boolean {
  try {
    if (text.includes("%")) return false;
    parseIp(text);
    return true;
  } catch {
    return false;
  }
}

/** Mask bytes for a prefix length. */
export function maskBytes(family: 4 | 6, prefixLength: number): Buffer {
  const bytes = Buffer.alloc(family === 4 ? 4 : 16);
  for (let bit = 0; bit < prefixLength; bit++) bytes[bit >> 3] |= 0x80 >> (bit & 7);
  return bytes;
}

/** Prefix length of a contiguous mask, or undefined when the mask has holes. */
export function maskPrefixLength(bytes: Buffer): number | undefined {
  let ones = 0;
  let seenZero = false;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      if (byte & (1 << bit)) {
        if (seenZero) return undefined;
        ones++;
      } else {
        seenZero = true;
      }
    }
  }
  return ones;
}

export function encodeMask(family: 4 | 6, prefixLength: number): string {
  return maskBytes(family, prefixLength).toString("base64");
}

/** Decodes a base64 net.IPMask for an address of `family` into a prefix length. */
export function decodeMask(key: string, what: string, base64: string, family: 4 | 6): number {
  const bytes = Buffer.from(base64, "base64");
  if (bytes.toString("base64") !== base64) {
    throw new InvalidEntryError(key, "bad-cidr", `${what} "${base64}" is not base64`);
  }
  let effective = bytes;
  // Go may carry an IPv4 mask in 16-byte form (96 leading one bits).
  if (family === 4 && bytes.length === 16 && bytes.subarray(0, 12).every((b) => b === 0xff)) {
    effective = bytes.subarray(12);
  }
  if (effective.length !== (family === 4 ? 4 : 16)) {
    throw new InvalidEntryError(
      key,
      "bad-cidr",
      `${what} has ${bytes.length} bytes, expected ${family === 4 ? 4 : 16} for an IPv${family} address`,
    );
  }
  const ones = maskPrefixLength(effective);
  if (ones === undefined) throw new InvalidEntryError(key, "bad-cidr", `${what} is not a contiguous mask`);
  return ones;
}

/** "10.244.0.0/24" → the legacy object form Cilium writes. */
export function encodeLegacyCidr(cidrText: string): LegacyCidr {
  const cidr = parseCidr(cidrText);
  return { IP: formatIp(cidr.family, cidr.network), Mask: encodeMask(cidr.family, cidr.prefixLength) };
}

/**
 * Decodes Cilium's cidr.CIDR (an embedded *net.IPNet: {"IP", "Mask"}); returns canonical
 * "network/len". Cilium has no UnmarshalJSON for it (checked in v1.18.4 and v1.20.2), so the text
 * form "10.0.0.0/24" does not decode and makes the whole node invalid there: refused here too.
 */
export function decodeCidr(key: string, what: string, value: unknown): string {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new InvalidEntryError(key, "wrong-type", `${what} is not a CIDR object {"IP", "Mask"}`);
  }
  const { IP, Mask } = value as { IP?: unknown; Mask?: unknown };
  if (typeof IP !== "string" || typeof Mask !== "string") {
    throw new InvalidEntryError(key, "wrong-type", `${what} needs string fields IP and Mask`);
  }
  const ip = canonicalIp(key, `${what}.IP`, IP);
  const family = ip.includes(":") ? 6 : 4;
  const prefixLength = decodeMask(key, `${what}.Mask`, Mask, family);
  return formatCidr(parseCidr(`${ip}/${prefixLength}`));
}
