import { isIPv4, isIPv6 } from "node:net";

export type IpFamily = 4 | 6;

export interface Cidr {
  family: IpFamily;
  /** Network address (host bits cleared) as an integer. */
  network: bigint;
  prefixLength: number;
}

const BITS: Record<IpFamily, number> = { 4: 32, 6: 128 };

export function parseIp(text: string): { family: IpFamily; value: bigint } {
  if (isIPv4(text)) {
    const value = text.split(".").reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
    return { family: 4, value };
  }
  if (isIPv6(text)) {
    return { family: 6, value: ipv6ToBigInt(text) };
  }
  throw new Error(`"${text}" is not an IPv4 or IPv6 address`);
}

function ipv6ToBigInt(text: string): bigint {
  let head = text;
  let tailV4: string | undefined;
  const lastColon = text.lastIndexOf(":");
  if (text.slice(lastColon + 1).includes(".")) {
    tailV4 = text.slice(lastColon + 1);
    head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [left, right] = head.includes("::") ? head.split("::") : [head, undefined];
  const leftParts = left ? left.split(":") : [];
  const rightParts = right ? right.split(":") : [];
  const fill = right === undefined ? [] : new Array(8 - leftParts.length - rightParts.length).fill("0");
  const groups = [...leftParts, ...fill, ...rightParts];
  let value = groups.reduce((acc, group) => (acc << 16n) | BigInt(Number.parseInt(group || "0", 16)), 0n);
  if (tailV4) value = (value & ~0xffffffffn) | parseIp(tailV4).value;
  return value;
}

export function formatIp(family: IpFamily, value: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join(".");
  }
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  // Compress the longest run of zero groups, as RFC 5952 asks.
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLength && j - i > 1) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(":");
  return `${groups.slice(0, bestStart).join(":")}::${groups.slice(bestStart + bestLength).join(":")}`;
}

export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  if (slash < 0) throw new Error(`"${text}" is not a CIDR (expected address/prefix, e.g. 10.1.0.0/16)`);
  const { family, value } = parseIp(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  const prefixLength = Number(prefixText);
  if (!/^\d+$/.test(prefixText) || prefixLength > BITS[family]) {
    throw new Error(`"${text}" has an invalid prefix length (0..${BITS[family]})`);
  }
  return { family, network: value & mask(family, prefixLength), prefixLength };
}

function mask(family: IpFamily, prefixLength: number): bigint {
  const bits = BigInt(BITS[family]);
  const all = (1n << bits) - 1n;
  return all ^ ((1n << (bits - BigInt(prefixLength))) - 1n);
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIp(cidr.family, cidr.network)}/${cidr.prefixLength}`;
}

/** The one-address prefix of an address: 10.0.0.1 → 10.0.0.1/32, fd00::1 → fd00::1/128. */
export function hostCidr(ip: string): string {
  const { family, value } = parseIp(ip);
  return formatCidr({ family, network: value, prefixLength: BITS[family] });
}

export function cidrSize(cidr: Cidr): bigint {
  return 1n << BigInt(BITS[cidr.family] - cidr.prefixLength);
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  if (a.family !== b.family) return false;
  const shorter = Math.min(a.prefixLength, b.prefixLength);
  const m = mask(a.family, shorter);
  return (a.network & m) === (b.network & m);
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  const parsed = parseIp(ip);
  return (
    parsed.family === cidr.family && (parsed.value & mask(cidr.family, cidr.prefixLength)) === cidr.network
  );
}

/** The n-th address of a CIDR (0 = network address); throws when n is outside it. */
export function nthAddress(cidr: Cidr, n: number | bigint): string {
  const offset = BigInt(n);
  if (offset < 0n || offset >= cidrSize(cidr)) {
    throw new Error(`address #${offset} is outside ${formatCidr(cidr)}`);
  }
  return formatIp(cidr.family, cidr.network + offset);
}

/** The index-th subnet of the given prefix length inside a CIDR (e.g. a node's /24 out of a /16). */
export function nthSubnet(cidr: Cidr, prefixLength: number, index: number): Cidr {
  if (prefixLength < cidr.prefixLength)
    throw new Error(`/${prefixLength} is larger than ${formatCidr(cidr)}`);
  const count = 1n << BigInt(prefixLength - cidr.prefixLength);
  if (BigInt(index) >= count)
    throw new Error(`${formatCidr(cidr)} has only ${count} subnets of /${prefixLength}`);
  const step = 1n << BigInt(BITS[cidr.family] - prefixLength);
  return { family: cidr.family, network: cidr.network + step * BigInt(index), prefixLength };
}

/** Kind accepts "10.1.0.0/16" or a dual-stack "10.1.0.0/16,fd00:1::/56". */
export function parseCidrList(text: string): Cidr[] {
  return text
    .split(",")
    .map((part) => part.trim())
    .filter(Boolean)
    .map(parseCidr);
}
