/**
 * rtnetlink request messages for an endpoint's links, addresses, routes and neighbour entry, and
 * the parsing of the kernel's acknowledgement. Pure: bytes in, bytes out. Layouts are the UAPI
 * structs of linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/veth.h and
 * linux/neighbour.h (https://docs.kernel.org/userspace-api/netlink/intro.html); each request is
 * what the iproute2 command named in its comment sends.
 */

const NLMSG_HDRLEN = 16;
const NLMSG_ERROR = 2;

export const NlFlag = {
  request: 0x1,
  ack: 0x4,
  replace: 0x100,
  excl: 0x200,
  create: 0x400,
  /** NLM_F_ROOT | NLM_F_MATCH: every object of the type */
  dump: 0x300,
} as const;

export const RtmType = {
  newLink: 16,
  delLink: 17,
  newAddr: 20,
  newRoute: 24,
  newNeigh: 28,
  getRoute: 26,
  getNeigh: 30,
} as const;

const AF_UNSPEC = 0;
const AF_INET = 2;
const IFF_UP = 0x1;
const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
const IFLA_MTU = 4;
const IFLA_LINKINFO = 18;
const IFLA_NET_NS_FD = 28;
const IFLA_INFO_KIND = 1;
const IFLA_INFO_DATA = 2;
const VETH_INFO_PEER = 1;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const RTA_DST = 1;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RT_TABLE_MAIN = 254;
const RTPROT_BOOT = 3;
const RT_SCOPE_UNIVERSE = 0;
const RT_SCOPE_LINK = 253;
const RTN_UNICAST = 1;
const NDA_DST = 1;
const NDA_LLADDR = 2;
const NUD_PERMANENT = 0x80;

const align4 = (n: number) => (n + 3) & ~3;

/** One netlink attribute (struct rtattr), payload padded to 4 bytes. */
function attr(type: number, payload: Buffer): Buffer {
  const out = Buffer.alloc(align4(4 + payload.length));
  out.writeUInt16LE(4 + payload.length, 0);
  out.writeUInt16LE(type, 2);
  payload.copy(out, 4);
  return out;
}

const nested = (type: number, ...children: Buffer[]) => attr(type, Buffer.concat(children));
const u32 = (value: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(value >>> 0);
  return b;
};
const cString = (value: string) => Buffer.from(`${value}\0`, "utf8");

export function macBytes(mac: string): Buffer {
  const parts = mac.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p)))
    throw new Error(`mac "${mac}" is not six hex bytes`);
  return Buffer.from(parts.map((p) => Number.parseInt(p, 16)));
}

export function ipv4Bytes(ip: string): Buffer {
  const parts = ip.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255))
    throw new Error(`address "${ip}" is not an IPv4 address`);
  return Buffer.from(parts.map(Number));
}

/** struct ifinfomsg */
function ifinfo(index: number, flags = 0, change = 0): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt8(AF_UNSPEC, 0);
  b.writeInt32LE(index, 4);
  b.writeUInt32LE(flags, 8);
  b.writeUInt32LE(change, 12);
  return b;
}

/** struct rtmsg for an IPv4 unicast route in the main table */
function rtmsg(dstLen: number, scope: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(AF_INET, 0);
  b.writeUInt8(dstLen, 1);
  b.writeUInt8(RT_TABLE_MAIN, 4);
  b.writeUInt8(RTPROT_BOOT, 5);
  b.writeUInt8(scope, 6);
  b.writeUInt8(RTN_UNICAST, 7);
  return b;
}

/**
 * A request: nlmsghdr (length, type, flags, seq; pid 0 = the kernel) + body. Asks for an
 * acknowledgement, except a dump (it ends with NLMSG_DONE instead).
 */
export function message(type: number, flags: number, seq: number, ...body: Buffer[]): Buffer {
  const payload = Buffer.concat(body);
  const header = Buffer.alloc(NLMSG_HDRLEN);
  header.writeUInt32LE(NLMSG_HDRLEN + payload.length, 0);
  header.writeUInt16LE(type, 4);
  const ack = (flags & NlFlag.dump) === NlFlag.dump ? 0 : NlFlag.ack;
  header.writeUInt16LE(flags | NlFlag.request | ack, 6);
  header.writeUInt32LE(seq >>> 0, 8);
  return Buffer.concat([header, payload]);
}

/** A request before its sequence number: what to send and how to name it in an error. */
export interface RtRequest {
  what: string;
  encode(seq: number): Buffer;
}

export interface VethSpec {
  hostIf: string;
  hostMac: string;
  podIf: string;
  podMac: string;
  mtu: number;
  /** fd of the pod's netns, open in this process */
  podNetnsFd: number;
}

/** `ip link add <host> address <mac> mtu <mtu> type veth peer name <pod> address <mac> mtu <mtu> netns <ns>` */
export function addVeth(spec: VethSpec): RtRequest {
  const peer = Buffer.concat([
    ifinfo(0),
    attr(IFLA_IFNAME, cString(spec.podIf)),
    attr(IFLA_ADDRESS, macBytes(spec.podMac)),
    attr(IFLA_MTU, u32(spec.mtu)),
    attr(IFLA_NET_NS_FD, u32(spec.podNetnsFd)),
  ]);
  return {
    what: `link add ${spec.hostIf} type veth peer ${spec.podIf}`,
    encode: (seq) =>
      message(
        RtmType.newLink,
        NlFlag.create | NlFlag.excl,
        seq,
        ifinfo(0),
        attr(IFLA_IFNAME, cString(spec.hostIf)),
        attr(IFLA_ADDRESS, macBytes(spec.hostMac)),
        attr(IFLA_MTU, u32(spec.mtu)),
        nested(
          IFLA_LINKINFO,
          attr(IFLA_INFO_KIND, cString("veth")),
          nested(IFLA_INFO_DATA, attr(VETH_INFO_PEER, peer)),
        ),
      ),
  };
}

/** `ip link set <name> up` */
export function linkUp(name: string): RtRequest {
  return {
    what: `link set ${name} up`,
    encode: (seq) =>
      message(RtmType.newLink, 0, seq, ifinfo(0, IFF_UP, IFF_UP), attr(IFLA_IFNAME, cString(name))),
  };
}

/** `ip link del <name>` */
export function deleteLink(name: string): RtRequest {
  return {
    what: `link del ${name}`,
    encode: (seq) => message(RtmType.delLink, 0, seq, ifinfo(0), attr(IFLA_IFNAME, cString(name))),
  };
}

/** `ip addr add <ip>/32 dev <ifindex>` */
export function addAddress32(ip: string, ifindex: number): RtRequest {
  const ifaddr = Buffer.alloc(8);
  ifaddr.writeUInt8(AF_INET, 0);
  ifaddr.writeUInt8(32, 1);
  ifaddr.writeUInt8(RT_SCOPE_UNIVERSE, 3);
  ifaddr.writeUInt32LE(ifindex, 4);
  return {
    what: `addr add ${ip}/32 dev ${ifindex}`,
    encode: (seq) =>
      message(
        RtmType.newAddr,
        NlFlag.create | NlFlag.excl,
        seq,
        ifaddr,
        attr(IFA_LOCAL, ipv4Bytes(ip)),
        attr(IFA_ADDRESS, ipv4Bytes(ip)),
      ),
  };
}

/**
 * `ip route replace <ip>/32 dev <ifindex> scope link` (replace) or
 * `ip route add <ip> dev <ifindex> scope link` (add).
 */
export function linkRoute32(ip: string, ifindex: number, mode: "add" | "replace"): RtRequest {
  return {
    what: `route ${mode} ${ip}/32 dev ${ifindex} scope link`,
    encode: (seq) =>
      message(
        RtmType.newRoute,
        NlFlag.create | (mode === "add" ? NlFlag.excl : NlFlag.replace),
        seq,
        rtmsg(32, RT_SCOPE_LINK),
        attr(RTA_DST, ipv4Bytes(ip)),
        attr(RTA_OIF, u32(ifindex)),
      ),
  };
}

/** `ip route add default via <gateway> dev <ifindex>` */
export function addDefaultRoute(gateway: string, ifindex: number): RtRequest {
  return {
    what: `route add default via ${gateway} dev ${ifindex}`,
    encode: (seq) =>
      message(
        RtmType.newRoute,
        NlFlag.create | NlFlag.excl,
        seq,
        rtmsg(0, RT_SCOPE_UNIVERSE),
        attr(RTA_GATEWAY, ipv4Bytes(gateway)),
        attr(RTA_OIF, u32(ifindex)),
      ),
  };
}

/** `ip neigh replace <ip> lladdr <mac> dev <ifindex> nud permanent` */
export function permanentNeighbour(ip: string, mac: string, ifindex: number): RtRequest {
  const nd = Buffer.alloc(12);
  nd.writeUInt8(AF_INET, 0);
  nd.writeInt32LE(ifindex, 4);
  nd.writeUInt16LE(NUD_PERMANENT, 8);
  return {
    what: `neigh replace ${ip} lladdr ${mac} dev ${ifindex}`,
    encode: (seq) =>
      message(
        RtmType.newNeigh,
        NlFlag.create | NlFlag.replace,
        seq,
        nd,
        attr(NDA_DST, ipv4Bytes(ip)),
        attr(NDA_LLADDR, macBytes(mac)),
      ),
  };
}

/**
 * The acknowledgement for request seq in what recv() returned: 0 (success), a negative errno, or
 * undefined when the buffer holds no answer to seq (e.g. a stale one of an abandoned request).
 */
export function ackFor(reply: Buffer, seq: number): number | undefined {
  let offset = 0;
  while (offset + NLMSG_HDRLEN <= reply.length) {
    const length = reply.readUInt32LE(offset);
    if (length < NLMSG_HDRLEN || offset + length > reply.length) return undefined;
    const type = reply.readUInt16LE(offset + 4);
    const replySeq = reply.readUInt32LE(offset + 8);
    if (type === NLMSG_ERROR && replySeq === seq >>> 0 && length >= NLMSG_HDRLEN + 4)
      return reply.readInt32LE(offset + NLMSG_HDRLEN);
    offset += align4(length);
  }
  return undefined;
}
