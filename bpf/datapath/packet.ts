/**
 * Builds and parses Ethernet/IPv4/TCP|UDP frames with correct checksums, for BPF_PROG_TEST_RUN
 * tests and benchmarks.
 */
import { FAMILY_IPV4, Proto, readAddress, writeAddress } from "./codecs.js";

export interface PacketSpec {
  srcMac?: string;
  dstMac?: string;
  saddr: string;
  daddr: string;
  proto: number;
  sport?: number;
  dport?: number;
  payload?: Buffer;
  /** UDP only: send without checksum (0) */
  noUdpChecksum?: boolean;
  /** TCP only: the flags byte (default SYN) */
  tcpFlags?: number;
}

export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, ACK: 0x10 } as const;

export interface ParsedPacket {
  srcMac: string;
  dstMac: string;
  saddr: string;
  daddr: string;
  proto: number;
  sport: number;
  dport: number;
  ipChecksumValid: boolean;
  l4ChecksumValid: boolean;
  l4Checksum: number;
}

const ETH_HLEN = 14;
const IP_HLEN = 20;
const IPV6_HLEN = 40;

/** 4 bytes for IPv4, 16 for IPv6, in network order. */
function ipBytes(address: string): Buffer {
  const buffer = Buffer.alloc(16);
  const family = writeAddress(address, buffer, 0);
  return family === FAMILY_IPV4 ? buffer.subarray(0, 4) : buffer;
}

function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(":").map((part) => Number.parseInt(part, 16)));
}

function formatMac(bytes: Buffer): string {
  return [...bytes].map((byte) => byte.toString(16).padStart(2, "0")).join(":");
}

/** RFC 1071 one's-complement sum over the given buffers. */
export function internetChecksum(...parts: Buffer[]): number {
  let sum = 0;
  for (const part of parts) {
    for (let i = 0; i + 1 < part.length; i += 2) sum += part.readUInt16BE(i);
    if (part.length % 2) sum += part[part.length - 1] << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function pseudoHeader(saddr: Buffer, daddr: Buffer, proto: number, length: number): Buffer {
  if (saddr.length === 16) {
    const header = Buffer.alloc(40); // RFC 8200 §8.1
    saddr.copy(header, 0);
    daddr.copy(header, 16);
    header.writeUInt32BE(length, 32);
    header[39] = proto;
    return header;
  }
  const header = Buffer.alloc(12);
  saddr.copy(header, 0);
  daddr.copy(header, 4);
  header[9] = proto;
  header.writeUInt16BE(length, 10);
  return header;
}

function l4HeaderLength(proto: number): number {
  return proto === Proto.TCP ? 20 : proto === Proto.UDP ? 8 : 0;
}

export function buildPacket(spec: PacketSpec): Buffer {
  const payload = spec.payload ?? Buffer.from("clustermesh");
  const l4Length = l4HeaderLength(spec.proto) + payload.length;
  const saddr = ipBytes(spec.saddr);
  const daddr = ipBytes(spec.daddr);
  const isV6 = saddr.length === 16;
  const l3Length = isV6 ? IPV6_HLEN : IP_HLEN;
  const frame = Buffer.alloc(ETH_HLEN + l3Length + l4Length);
  macBytes(spec.dstMac ?? "02:00:00:00:00:02").copy(frame, 0);
  macBytes(spec.srcMac ?? "02:00:00:00:00:01").copy(frame, 6);
  frame.writeUInt16BE(isV6 ? 0x86dd : 0x0800, 12);
  const ip = frame.subarray(ETH_HLEN, ETH_HLEN + l3Length);
  if (isV6) {
    ip.writeUInt32BE(0x60000000, 0);
    ip.writeUInt16BE(l4Length, 4);
    ip[6] = spec.proto;
    ip[7] = 64;
    saddr.copy(ip, 8);
    daddr.copy(ip, 24);
  } else {
    ip[0] = 0x45;
    ip.writeUInt16BE(IP_HLEN + l4Length, 2);
    ip.writeUInt16BE(0x1234, 4);
    ip.writeUInt16BE(0x4000, 6); // DF
    ip[8] = 64;
    ip[9] = spec.proto;
    saddr.copy(ip, 12);
    daddr.copy(ip, 16);
    ip.writeUInt16BE(internetChecksum(ip), 10);
  }
  const l4 = frame.subarray(ETH_HLEN + l3Length);
  if (spec.proto === Proto.TCP || spec.proto === Proto.UDP) {
    l4.writeUInt16BE(spec.sport ?? 40000, 0);
    l4.writeUInt16BE(spec.dport ?? 80, 2);
    if (spec.proto === Proto.TCP) {
      l4.writeUInt32BE(1, 4); // seq
      l4[12] = 5 << 4; // data offset
      l4[13] = spec.tcpFlags ?? TcpFlag.SYN;
      l4.writeUInt16BE(65535, 14);
    } else {
      l4.writeUInt16BE(l4Length, 4);
    }
    payload.copy(l4, l4HeaderLength(spec.proto));
    const checksumOffset = spec.proto === Proto.TCP ? 16 : 6;
    if (!(spec.proto === Proto.UDP && spec.noUdpChecksum && !isV6)) {
      let checksum = internetChecksum(pseudoHeader(saddr, daddr, spec.proto, l4Length), l4);
      if (spec.proto === Proto.UDP && checksum === 0) checksum = 0xffff;
      l4.writeUInt16BE(checksum, checksumOffset);
    }
  } else {
    payload.copy(l4, 0);
  }
  return frame;
}

export function parsePacket(frame: Buffer): ParsedPacket {
  const isV6 = frame.readUInt16BE(12) === 0x86dd;
  const l3Length = isV6 ? IPV6_HLEN : IP_HLEN;
  const ip = frame.subarray(ETH_HLEN, ETH_HLEN + l3Length);
  const proto = isV6 ? ip[6] : ip[9];
  const l4End = isV6 ? ETH_HLEN + IPV6_HLEN + ip.readUInt16BE(4) : ETH_HLEN + ip.readUInt16BE(2);
  const l4 = frame.subarray(ETH_HLEN + l3Length, l4End);
  const saddr = isV6 ? ip.subarray(8, 24) : ip.subarray(12, 16);
  const daddr = isV6 ? ip.subarray(24, 40) : ip.subarray(16, 20);
  const family = isV6 ? 2 : FAMILY_IPV4;
  const hasPorts = proto === Proto.TCP || proto === Proto.UDP;
  const l4Checksum = hasPorts ? l4.readUInt16BE(proto === Proto.TCP ? 16 : 6) : 0;
  const udpWithoutChecksum = !isV6 && proto === Proto.UDP && l4Checksum === 0;
  return {
    dstMac: formatMac(frame.subarray(0, 6)),
    srcMac: formatMac(frame.subarray(6, 12)),
    saddr: readAddress(Buffer.concat([saddr, Buffer.alloc(16 - saddr.length)]), 0, family),
    daddr: readAddress(Buffer.concat([daddr, Buffer.alloc(16 - daddr.length)]), 0, family),
    proto,
    sport: hasPorts ? l4.readUInt16BE(0) : 0,
    dport: hasPorts ? l4.readUInt16BE(2) : 0,
    ipChecksumValid: isV6 || internetChecksum(ip) === 0,
    l4ChecksumValid:
      !hasPorts ||
      udpWithoutChecksum ||
      internetChecksum(pseudoHeader(saddr, daddr, proto, l4.length), l4) === 0,
    l4Checksum,
  };
}

const MARK_MAGIC_IDENTITY = 0x0e;
const MARK_IDENTITY_SHIFT = 8;
const SKB_MARK_OFFSET = 8; // struct __sk_buff: len, pkt_type, mark

/** A BPF_PROG_TEST_RUN context (struct __sk_buff prefix) whose mark carries a source identity, as
 * from-pod and the tunnel ingress leave it for to-pod. */
export function identityMarkContext(identity: number): Buffer {
  const context = Buffer.alloc(SKB_MARK_OFFSET + 4);
  context.writeUInt32LE(((identity << MARK_IDENTITY_SHIFT) | MARK_MAGIC_IDENTITY) >>> 0, SKB_MARK_OFFSET);
  return context;
}

/** An ICMP (IPv4) or ICMPv6 message: type, code, then the rest of the header and body as given. */
export function buildIcmp(spec: {
  saddr: string;
  daddr: string;
  type: number;
  id?: number;
  body?: Buffer;
}): Buffer {
  const v6 = spec.saddr.includes(":");
  const header = Buffer.alloc(8);
  header[0] = spec.type;
  header.writeUInt16BE(spec.id ?? 0, 4);
  header.writeUInt16BE(1, 6); // sequence
  return buildPacket({
    saddr: spec.saddr,
    daddr: spec.daddr,
    proto: v6 ? 58 : 1,
    payload: Buffer.concat([header, spec.body ?? Buffer.alloc(0)]),
  });
}
