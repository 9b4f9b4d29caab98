/**
 * IPv4 route and neighbour dumps (what `ip -4 route show` / `ip -4 neigh show` read) and the
 * parsing of their replies into plain records, in iproute2's notation. Pure. Layouts: struct rtmsg
 * and struct ndmsg of linux/rtnetlink.h and linux/neighbour.h.
 */
import { message, NlFlag, RtmType } from "./messages.js";

const NLMSG_HDRLEN = 16;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
const AF_INET = 2;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_TABLE = 15;
const NDA_DST = 1;
const NDA_LLADDR = 2;
export const RT_TABLE_MAIN = 254;
export const NUD_PERMANENT = 0x80;

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  body: Buffer;
}

/** The messages in what one recv() returned; a truncated tail is dropped. */
export function splitMessages(reply: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let offset = 0;
  while (offset + NLMSG_HDRLEN <= reply.length) {
    const length = reply.readUInt32LE(offset);
    if (length < NLMSG_HDRLEN || offset + length > reply.length) break;
    out.push({
      type: reply.readUInt16LE(offset + 4),
      flags: reply.readUInt16LE(offset + 6),
      seq: reply.readUInt32LE(offset + 8),
      body: reply.subarray(offset + NLMSG_HDRLEN, offset + length),
    });
    offset += (length + 3) & ~3;
  }
  return out;
}

/** Attributes by type (the last one of a type wins, as for the kernel's nla_parse). */
function attributes(bytes: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let at = 0;
  while (at + 4 <= bytes.length) {
    const length = bytes.readUInt16LE(at);
    if (length < 4 || at + length > bytes.length) break;
    out.set(bytes.readUInt16LE(at + 2) & 0x3fff, bytes.subarray(at + 4, at + length));
    at += (length + 3) & ~3;
  }
  return out;
}

const ipv4 = (bytes: Buffer | undefined) => (bytes && bytes.length === 4 ? [...bytes].join(".") : undefined);

export interface RouteRecord {
  /** iproute2's notation: "default", "10.1.2.3" for a /32, else "10.1.0.0/16" */
  dst: string;
  table: number;
  oif?: number;
  gateway?: string;
}

export interface NeighbourRecord {
  dst: string;
  ifindex: number;
  state: number;
  /** lower-case colon-separated hex, as `ip neigh` prints it */
  lladdr?: string;
}

/** `ip -4 route show table all` as a request. */
export function dumpRoutes4(seq: number): Buffer {
  const rtmsg = Buffer.alloc(12);
  rtmsg.writeUInt8(AF_INET, 0);
  return message(RtmType.getRoute, NlFlag.dump, seq, rtmsg);
}

/** `ip -4 neigh show` as a request. */
export function dumpNeighbours4(seq: number): Buffer {
  const ndmsg = Buffer.alloc(12);
  ndmsg.writeUInt8(AF_INET, 0);
  return message(RtmType.getNeigh, NlFlag.dump, seq, ndmsg);
}

/** One RTM_NEWROUTE body of a dump; undefined for another family. */
export function parseRoute(body: Buffer): RouteRecord | undefined {
  if (body.length < 12 || body.readUInt8(0) !== AF_INET) return undefined;
  const dstLen = body.readUInt8(1);
  const attrs = attributes(body.subarray(12));
  const table = attrs.get(RTA_TABLE)?.readUInt32LE(0) ?? body.readUInt8(4);
  const address = ipv4(attrs.get(RTA_DST));
  const dst =
    dstLen === 0 ? "default" : dstLen === 32 ? (address ?? "") : `${address ?? "0.0.0.0"}/${dstLen}`;
  return {
    dst,
    table,
    oif: attrs.get(RTA_OIF)?.readUInt32LE(0),
    gateway: ipv4(attrs.get(RTA_GATEWAY)),
  };
}

/** One RTM_NEWNEIGH body of a dump; undefined for another family. */
export function parseNeighbour(body: Buffer): NeighbourRecord | undefined {
  if (body.length < 12 || body.readUInt8(0) !== AF_INET) return undefined;
  const attrs = attributes(body.subarray(12));
  const lladdr = attrs.get(NDA_LLADDR);
  return {
    dst: ipv4(attrs.get(NDA_DST)) ?? "",
    ifindex: body.readInt32LE(4),
    state: body.readUInt16LE(8),
    lladdr: lladdr ? [...lladdr].map((b) => b.toString(16).padStart(2, "0")).join(":") : undefined,
  };
}
