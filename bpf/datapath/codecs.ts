/** Codecs for the datapath maps' keys and values (layouts in layout.ts, C in bpf/include/dp_types.h). */
import { formatIp, type IpFamily, parseIp } from "../../lib/cidr.js";
import type { Codec } from "../libbpf-ts/index.js";
import { STRUCT_LAYOUTS as L } from "./layout.js";

export const FAMILY_IPV4 = 1;
export const FAMILY_IPV6 = 2;
export const Proto = { TCP: 6, UDP: 17, SCTP: 132 } as const;
export const IPV4_STATIC_PREFIX_BITS = 32;

export const CtDirection = { Service: 0, Reply: 1 } as const;
export const IpcacheFlags = { HasTunnel: 1, TunnelIpv6: 2, RemoteCluster: 4 } as const;
export const ConfigFlags = { Trace: 1 } as const;
export const BackendState = { Active: 0, Terminating: 1 } as const;

/** Reasons counted in cm_metrics (enum dp_metric). */
export const Metric = {
  ForwardStack: 0,
  ForwardLocal: 1,
  ForwardTunnel: 2,
  LbDnat: 3,
  LbRevNat: 4,
  SockLb: 5,
  TunnelRx: 6,
  CtNew: 7,
  CtHit: 8,
  NodePortDnat: 9,
  NodePortRevNat: 10,
  TunnelHostTx: 11,
  ForwardNetdev: 12,
  /** a tunnel identity of another cluster than the sending node's, taken as world (not a drop) */
  PolicyForgedIdentity: 13,
  MasqSnat: 14,
  MasqRevNat: 15,
  DropNoBackend: 16,
  DropBackendSlot: 17,
  DropInvalid: 18,
  DropTunnelKey: 19,
  DropNoConfig: 20,
  DropRewrite: 21,
  DropPolicy: 22,
  DropNoTunnelEndpoint: 23,
  DropSnatPorts: 24,
  DropNoRoute: 26,
} as const;
export const METRIC_SLOTS = 32;

// ---- addresses: union dp_addr, 16 bytes, network order; IPv4 in the first 4 bytes ----

function familyCode(family: IpFamily): number {
  return family === 4 ? FAMILY_IPV4 : FAMILY_IPV6;
}

/** Parses dotted-quad IPv4 into target[offset..offset+4); false if the text is not IPv4. Hot path: no allocation. */
function writeIpv4(address: string, target: Buffer, offset: number): boolean {
  let octet = 0;
  let digits = 0;
  let index = 0;
  for (let i = 0; i < address.length; i++) {
    const code = address.charCodeAt(i);
    if (code === 46 /* . */) {
      if (digits === 0 || index === 3) return false;
      target[offset + index++] = octet;
      octet = 0;
      digits = 0;
    } else if (code >= 48 && code <= 57 && digits < 3) {
      octet = octet * 10 + (code - 48);
      if (octet > 255) return false;
      digits++;
    } else {
      return false;
    }
  }
  if (digits === 0 || index !== 3) return false;
  target[offset + 3] = octet;
  return true;
}

/** Writes an IPv4 or IPv6 address into a 16-byte dp_addr; returns the family code. */
export function writeAddress(address: string, target: Buffer, offset: number): number {
  target.fill(0, offset, offset + 16);
  if (writeIpv4(address, target, offset)) return FAMILY_IPV4;
  if (!address.includes(":")) throw new RangeError(`bad IP address ${address}`);
  const { family, value } = parseIp(address);
  for (let i = 0; i < 16; i++) target[offset + i] = Number((value >> BigInt(8 * (15 - i))) & 0xffn);
  return familyCode(family);
}

export function readAddress(source: Buffer, offset: number, family: number): string {
  if (family === FAMILY_IPV4) {
    return `${source[offset]}.${source[offset + 1]}.${source[offset + 2]}.${source[offset + 3]}`;
  }
  let value = 0n;
  for (let i = 0; i < 16; i++) value = (value << 8n) | BigInt(source[offset + i]);
  return formatIp(6, value);
}

function readMac(source: Buffer, offset: number): string {
  return [...source.subarray(offset, offset + 6)].map((byte) => byte.toString(16).padStart(2, "0")).join(":");
}

function writeMac(mac: string, target: Buffer, offset: number): void {
  const bytes = mac.split(":").map((part) => Number.parseInt(part, 16));
  if (bytes.length !== 6 || bytes.some((byte) => !(byte >= 0 && byte <= 255)))
    throw new RangeError(`bad MAC ${mac}`);
  Buffer.from(bytes).copy(target, offset);
}

function zeroed(target: Buffer, offset: number, size: number): void {
  target.fill(0, offset, offset + size);
}

// ---- services ----

export interface ServiceKey {
  address: string;
  port: number;
  proto: number;
  /** 0 = the frontend entry, 1..count = backend slots */
  backendSlot: number;
  scope?: number;
}

export const serviceKeyCodec: Codec<ServiceKey> = {
  size: L.lb_service_key.size,
  encode(key, target, offset) {
    const m = L.lb_service_key.members;
    zeroed(target, offset, this.size);
    const family = writeAddress(key.address, target, offset + m.address);
    target.writeUInt16BE(key.port, offset + m.dport);
    target.writeUInt16LE(key.backendSlot, offset + m.backend_slot);
    target[offset + m.proto] = key.proto;
    target[offset + m.family] = family;
    target[offset + m.scope] = key.scope ?? 0;
  },
  decode(source, offset) {
    const m = L.lb_service_key.members;
    return {
      address: readAddress(source, offset + m.address, source[offset + m.family]),
      port: source.readUInt16BE(offset + m.dport),
      proto: source[offset + m.proto],
      backendSlot: source.readUInt16LE(offset + m.backend_slot),
      scope: source[offset + m.scope],
    };
  },
};

/** lb_service_value.flags of a frontend entry (include/dp_lb_affinity.h). */
export const ServiceFlags = {
  /** ClientIP session affinity; the frontend's backendId holds the timeout in seconds */
  Affinity: 0x1,
} as const;

export interface ServiceValue {
  /** slot > 0: the backend; the frontend entry: the affinity timeout (s) with ServiceFlags.Affinity, else 0 */
  backendId: number;
  /** frontend entry: number of backend slots */
  count: number;
  revNatIndex: number;
  flags?: number;
  flags2?: number;
}

export const serviceValueCodec: Codec<ServiceValue> = {
  size: L.lb_service_value.size,
  encode(value, target, offset) {
    const m = L.lb_service_value.members;
    zeroed(target, offset, this.size);
    target.writeUInt32LE(value.backendId, offset + m.backend_id);
    target.writeUInt16LE(value.count, offset + m.count);
    target.writeUInt16LE(value.revNatIndex, offset + m.rev_nat_index);
    target[offset + m.flags] = value.flags ?? 0;
    target[offset + m.flags2] = value.flags2 ?? 0;
  },
  decode(source, offset) {
    const m = L.lb_service_value.members;
    return {
      backendId: source.readUInt32LE(offset + m.backend_id),
      count: source.readUInt16LE(offset + m.count),
      revNatIndex: source.readUInt16LE(offset + m.rev_nat_index),
      flags: source[offset + m.flags],
      flags2: source[offset + m.flags2],
    };
  },
};

export interface Backend {
  address: string;
  port: number;
  proto: number;
  state?: number;
  clusterId?: number;
  zone?: number;
}

export const backendCodec: Codec<Backend> = {
  size: L.lb_backend.size,
  encode(value, target, offset) {
    const m = L.lb_backend.members;
    zeroed(target, offset, this.size);
    const family = writeAddress(value.address, target, offset + m.address);
    target.writeUInt16BE(value.port, offset + m.port);
    target[offset + m.proto] = value.proto;
    target[offset + m.flags] = value.state ?? BackendState.Active;
    target.writeUInt16LE(value.clusterId ?? 0, offset + m.cluster_id);
    target[offset + m.zone] = value.zone ?? 0;
    target[offset + m.family] = family;
  },
  decode(source, offset) {
    const m = L.lb_backend.members;
    return {
      address: readAddress(source, offset + m.address, source[offset + m.family]),
      port: source.readUInt16BE(offset + m.port),
      proto: source[offset + m.proto],
      state: source[offset + m.flags],
      clusterId: source.readUInt16LE(offset + m.cluster_id),
      zone: source[offset + m.zone],
    };
  },
};

export interface RevNat {
  address: string;
  port: number;
}

export const revNatCodec: Codec<RevNat> = {
  size: L.lb_rev_nat.size,
  encode(value, target, offset) {
    const m = L.lb_rev_nat.members;
    zeroed(target, offset, this.size);
    target[offset + m.family] = writeAddress(value.address, target, offset + m.address);
    target.writeUInt16BE(value.port, offset + m.port);
  },
  decode(source, offset) {
    const m = L.lb_rev_nat.members;
    return {
      address: readAddress(source, offset + m.address, source[offset + m.family]),
      port: source.readUInt16BE(offset + m.port),
    };
  },
};

// ---- conntrack ----

export interface CtKey {
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
  proto: number;
  direction: number;
}

export const ctKeyCodec: Codec<CtKey> = {
  size: L.ct_key.size,
  encode(key, target, offset) {
    const m = L.ct_key.members;
    zeroed(target, offset, this.size);
    const family = writeAddress(key.saddr, target, offset + m.saddr);
    writeAddress(key.daddr, target, offset + m.daddr);
    target.writeUInt16BE(key.sport, offset + m.sport);
    target.writeUInt16BE(key.dport, offset + m.dport);
    target[offset + m.proto] = key.proto;
    target[offset + m.family] = family;
    target[offset + m.direction] = key.direction;
  },
  decode(source, offset) {
    const m = L.ct_key.members;
    const family = source[offset + m.family];
    return {
      saddr: readAddress(source, offset + m.saddr, family),
      daddr: readAddress(source, offset + m.daddr, family),
      sport: source.readUInt16BE(offset + m.sport),
      dport: source.readUInt16BE(offset + m.dport),
      proto: source[offset + m.proto],
      direction: source[offset + m.direction],
    };
  },
};

export interface CtEntry {
  backendId: number;
  revNatIndex: number;
  flags: number;
  lastSeenNs: bigint;
}

export const ctEntryCodec: Codec<CtEntry> = {
  size: L.ct_entry.size,
  encode(value, target, offset) {
    const m = L.ct_entry.members;
    target.writeUInt32LE(value.backendId, offset + m.backend_id);
    target.writeUInt16LE(value.revNatIndex, offset + m.rev_nat_index);
    target.writeUInt16LE(value.flags, offset + m.flags);
    target.writeBigUInt64LE(value.lastSeenNs, offset + m.last_seen_ns);
  },
  decode(source, offset) {
    const m = L.ct_entry.members;
    return {
      backendId: source.readUInt32LE(offset + m.backend_id),
      revNatIndex: source.readUInt16LE(offset + m.rev_nat_index),
      flags: source.readUInt16LE(offset + m.flags),
      lastSeenNs: source.readBigUInt64LE(offset + m.last_seen_ns),
    };
  },
};

// ---- ipcache ----

export interface IpcacheKey {
  /** CIDR, e.g. "10.2.0.0/24" or "10.2.0.7/32" */
  prefix: string;
  clusterId?: number;
}

export const ipcacheKeyCodec: Codec<IpcacheKey> = {
  size: L.ipcache_key.size,
  encode(key, target, offset) {
    const m = L.ipcache_key.members;
    zeroed(target, offset, this.size);
    const [address, lengthText] = key.prefix.split("/");
    const family = writeAddress(address, target, offset + m.address);
    const maxLength = family === FAMILY_IPV4 ? 32 : 128;
    const length = lengthText === undefined ? maxLength : Number(lengthText);
    if (!Number.isInteger(length) || length < 0 || length > maxLength)
      throw new RangeError(`bad prefix ${key.prefix}`);
    target.writeUInt32LE(IPV4_STATIC_PREFIX_BITS + length, offset + m.prefixlen);
    target.writeUInt16LE(key.clusterId ?? 0, offset + m.cluster_id);
    target[offset + m.family] = family;
  },
  decode(source, offset) {
    const m = L.ipcache_key.members;
    const length = source.readUInt32LE(offset + m.prefixlen) - IPV4_STATIC_PREFIX_BITS;
    return {
      prefix: `${readAddress(source, offset + m.address, source[offset + m.family])}/${length}`,
      clusterId: source.readUInt16LE(offset + m.cluster_id),
    };
  },
};

export interface IpcacheValue {
  identity: number;
  /** node IP to tunnel to; absent = reachable without the overlay */
  tunnelEndpoint?: string;
  remoteCluster?: boolean;
  encryptKey?: number;
  /** a node's own entry: the cluster owning the node (tunnel ingress checks identities against it) */
  clusterId?: number;
}

export const ipcacheValueCodec: Codec<IpcacheValue> = {
  size: L.ipcache_value.size,
  encode(value, target, offset) {
    const m = L.ipcache_value.members;
    zeroed(target, offset, this.size);
    target.writeUInt32LE(value.identity, offset + m.identity);
    let flags = value.remoteCluster ? IpcacheFlags.RemoteCluster : 0;
    if (value.tunnelEndpoint !== undefined) {
      const family = writeAddress(value.tunnelEndpoint, target, offset + m.tunnel_endpoint);
      flags |= IpcacheFlags.HasTunnel | (family === FAMILY_IPV6 ? IpcacheFlags.TunnelIpv6 : 0);
    }
    target[offset + m.flags] = flags;
    target[offset + m.encrypt_key] = value.encryptKey ?? 0;
    target.writeUInt16LE(value.clusterId ?? 0, offset + m.cluster_id);
  },
  decode(source, offset) {
    const m = L.ipcache_value.members;
    const flags = source[offset + m.flags];
    const value: IpcacheValue = { identity: source.readUInt32LE(offset + m.identity) };
    if (flags & IpcacheFlags.HasTunnel) {
      const family = flags & IpcacheFlags.TunnelIpv6 ? FAMILY_IPV6 : FAMILY_IPV4;
      value.tunnelEndpoint = readAddress(source, offset + m.tunnel_endpoint, family);
    }
    if (flags & IpcacheFlags.RemoteCluster) value.remoteCluster = true;
    const encryptKey = source[offset + m.encrypt_key];
    if (encryptKey) value.encryptKey = encryptKey;
    const clusterId = source.readUInt16LE(offset + m.cluster_id);
    if (clusterId) value.clusterId = clusterId;
    return value;
  },
};

// ---- endpoints ----

export interface EndpointKey {
  address: string;
}

export const endpointKeyCodec: Codec<EndpointKey> = {
  size: L.endpoint_key.size,
  encode(key, target, offset) {
    const m = L.endpoint_key.members;
    zeroed(target, offset, this.size);
    target[offset + m.family] = writeAddress(key.address, target, offset + m.address);
  },
  decode(source, offset) {
    const m = L.endpoint_key.members;
    return { address: readAddress(source, offset + m.address, source[offset + m.family]) };
  },
};

export interface EndpointInfo {
  /** host-side veth ifindex (in the node's netns) */
  ifindex: number;
  identity: number;
  /** the pod's eth0 MAC */
  mac: string;
  /** the host-side veth MAC */
  nodeMac: string;
  flags?: number;
}

export const endpointInfoCodec: Codec<EndpointInfo> = {
  size: L.endpoint_info.size,
  encode(value, target, offset) {
    const m = L.endpoint_info.members;
    zeroed(target, offset, this.size);
    target.writeUInt32LE(value.ifindex, offset + m.ifindex);
    target.writeUInt32LE(value.identity, offset + m.identity);
    writeMac(value.mac, target, offset + m.mac);
    writeMac(value.nodeMac, target, offset + m.node_mac);
    target.writeUInt32LE(value.flags ?? 0, offset + m.flags);
  },
  decode(source, offset) {
    const m = L.endpoint_info.members;
    return {
      ifindex: source.readUInt32LE(offset + m.ifindex),
      identity: source.readUInt32LE(offset + m.identity),
      mac: readMac(source, offset + m.mac),
      nodeMac: readMac(source, offset + m.node_mac),
      flags: source.readUInt32LE(offset + m.flags),
    };
  },
};

// ---- config, trace, socket rev-NAT, metrics ----

export interface DatapathConfig {
  tunnelIfindex: number;
  flags: number;
  worldIdentity: number;
}

export const configCodec: Codec<DatapathConfig> = {
  size: L.dp_config.size,
  encode(value, target, offset) {
    const m = L.dp_config.members;
    zeroed(target, offset, this.size);
    target.writeUInt32LE(value.tunnelIfindex, offset + m.tunnel_ifindex);
    target.writeUInt32LE(value.flags, offset + m.flags);
    target.writeUInt32LE(value.worldIdentity, offset + m.world_identity);
  },
  decode(source, offset) {
    const m = L.dp_config.members;
    return {
      tunnelIfindex: source.readUInt32LE(offset + m.tunnel_ifindex),
      flags: source.readUInt32LE(offset + m.flags),
      worldIdentity: source.readUInt32LE(offset + m.world_identity),
    };
  },
};

/** cm_node: this node on the underlay (NodePort from outside, host traffic into the tunnel). */
export interface NodeConfig {
  /** IPv4 address NodePort frontends answer on from the underlay, and the SNAT source */
  nodeIp: string;
  /** the underlay device: translated NodePort replies leave through it */
  underlayIfindex: number;
  /** tunnel id of packets the node's own stack sends to remote pods */
  hostIdentity: number;
  flags?: number;
}

export const nodeConfigCodec: Codec<NodeConfig> = {
  size: L.dp_node_config.size,
  encode(value, target, offset) {
    const m = L.dp_node_config.members;
    zeroed(target, offset, this.size);
    const scratch = Buffer.alloc(16);
    if (writeAddress(value.nodeIp, scratch, 0) !== FAMILY_IPV4)
      throw new RangeError(`node IP ${value.nodeIp}: the underlay is IPv4 only`);
    scratch.copy(target, offset + m.node_ip4, 0, 4);
    target.writeUInt32LE(value.underlayIfindex, offset + m.underlay_ifindex);
    target.writeUInt32LE(value.hostIdentity, offset + m.host_identity);
    target.writeUInt32LE(value.flags ?? 0, offset + m.flags);
  },
  decode(source, offset) {
    const m = L.dp_node_config.members;
    return {
      nodeIp: readAddress(source, offset + m.node_ip4, FAMILY_IPV4),
      underlayIfindex: source.readUInt32LE(offset + m.underlay_ifindex),
      hostIdentity: source.readUInt32LE(offset + m.host_identity),
      flags: source.readUInt32LE(offset + m.flags),
    };
  },
};

/** cm_nodeport value (key: CtKey). Service direction: backendId + snatPort; reply: client + nodePort. */
export interface NodePortNat {
  client: string;
  clientPort: number;
  snatPort: number;
  nodePort: number;
  backendId: number;
  lastSeenNs: bigint;
}

export const nodePortNatCodec: Codec<NodePortNat> = {
  size: L.nodeport_nat.size,
  encode(value, target, offset) {
    const m = L.nodeport_nat.members;
    zeroed(target, offset, this.size);
    writeAddress(value.client, target, offset + m.client);
    target.writeUInt16BE(value.clientPort, offset + m.client_port);
    target.writeUInt16BE(value.snatPort, offset + m.snat_port);
    target.writeUInt16BE(value.nodePort, offset + m.node_port);
    target.writeUInt32LE(value.backendId, offset + m.backend_id);
    target.writeBigUInt64LE(value.lastSeenNs, offset + m.last_seen_ns);
  },
  decode(source, offset) {
    const m = L.nodeport_nat.members;
    // no family member: IPv4 is all the underlay carries (an unset client reads as 0.0.0.0)
    return {
      client: readAddress(source, offset + m.client, FAMILY_IPV4),
      clientPort: source.readUInt16BE(offset + m.client_port),
      snatPort: source.readUInt16BE(offset + m.snat_port),
      nodePort: source.readUInt16BE(offset + m.node_port),
      backendId: source.readUInt32LE(offset + m.backend_id),
      lastSeenNs: source.readBigUInt64LE(offset + m.last_seen_ns),
    };
  },
};

export interface DatapathTrace {
  txTunnelId: number;
  txRemoteIp: string;
  txCount: number;
  rxIdentity: number;
  rxRemoteIp: string;
  rxCount: number;
}

export const traceCodec: Codec<DatapathTrace> = {
  size: L.dp_trace.size,
  encode(value, target, offset) {
    const m = L.dp_trace.members;
    const scratch = Buffer.alloc(16);
    target.writeUInt32LE(value.txTunnelId, offset + m.tx_tunnel_id);
    writeAddress(value.txRemoteIp, scratch, 0);
    scratch.copy(target, offset + m.tx_remote_ip4, 0, 4);
    target.writeUInt32LE(value.txCount, offset + m.tx_count);
    target.writeUInt32LE(value.rxIdentity, offset + m.rx_identity);
    writeAddress(value.rxRemoteIp, scratch, 0);
    scratch.copy(target, offset + m.rx_remote_ip4, 0, 4);
    target.writeUInt32LE(value.rxCount, offset + m.rx_count);
  },
  decode(source, offset) {
    const m = L.dp_trace.members;
    return {
      txTunnelId: source.readUInt32LE(offset + m.tx_tunnel_id),
      txRemoteIp: readAddress(source, offset + m.tx_remote_ip4, FAMILY_IPV4),
      txCount: source.readUInt32LE(offset + m.tx_count),
      rxIdentity: source.readUInt32LE(offset + m.rx_identity),
      rxRemoteIp: readAddress(source, offset + m.rx_remote_ip4, FAMILY_IPV4),
      rxCount: source.readUInt32LE(offset + m.rx_count),
    };
  },
};

export interface SockRevNatKey {
  cookie: bigint;
  address: string;
  port: number;
}

export const sockRevNatKeyCodec: Codec<SockRevNatKey> = {
  size: L.sock_revnat_key.size,
  encode(key, target, offset) {
    const m = L.sock_revnat_key.members;
    zeroed(target, offset, this.size);
    target.writeBigUInt64LE(key.cookie, offset + m.cookie);
    target[offset + m.family] = writeAddress(key.address, target, offset + m.address);
    target.writeUInt16BE(key.port, offset + m.port);
  },
  decode(source, offset) {
    const m = L.sock_revnat_key.members;
    return {
      cookie: source.readBigUInt64LE(offset + m.cookie),
      address: readAddress(source, offset + m.address, source[offset + m.family]),
      port: source.readUInt16BE(offset + m.port),
    };
  },
};

export interface SockRevNatValue {
  address: string;
  port: number;
  revNatIndex: number;
}

export const sockRevNatValueCodec: Codec<SockRevNatValue> = {
  size: L.sock_revnat_value.size,
  encode(value, target, offset) {
    const m = L.sock_revnat_value.members;
    zeroed(target, offset, this.size);
    writeAddress(value.address, target, offset + m.address);
    target.writeUInt16BE(value.port, offset + m.port);
    target.writeUInt16LE(value.revNatIndex, offset + m.rev_nat_index);
  },
  decode(source, offset) {
    const m = L.sock_revnat_value.members;
    // the value has no family field: an IPv4 address leaves bytes 4..15 zero
    const isV4 = source.subarray(offset + 4, offset + 16).every((byte) => byte === 0);
    return {
      address: readAddress(source, offset + m.address, isV4 ? FAMILY_IPV4 : FAMILY_IPV6),
      port: source.readUInt16BE(offset + m.port),
      revNatIndex: source.readUInt16LE(offset + m.rev_nat_index),
    };
  },
};

export interface MetricValue {
  packets: bigint;
  bytes: bigint;
}

export const metricValueCodec: Codec<MetricValue> = {
  size: L.dp_metric_value.size,
  encode(value, target, offset) {
    target.writeBigUInt64LE(value.packets, offset + L.dp_metric_value.members.packets);
    target.writeBigUInt64LE(value.bytes, offset + L.dp_metric_value.members.bytes);
  },
  decode(source, offset) {
    return {
      packets: source.readBigUInt64LE(offset + L.dp_metric_value.members.packets),
      bytes: source.readBigUInt64LE(offset + L.dp_metric_value.members.bytes),
    };
  },
};
