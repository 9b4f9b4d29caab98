/**
 * `cilium/state/nodes/v1/<cluster>/<node>` — Cilium's nodeTypes.Node
 * (https://github.com/cilium/cilium/blob/main/pkg/node/types/node.go). No JSON tags
 * in Go: field names as-is, every field always present, nil slices/maps as null, nil IPs as "".
 * Written in the shape of Cilium 1.15–1.19 (byte-identical to v1.18.4, which has NodeIdentity
 * between Annotations and WireguardPubKey); read from any release (a missing field is its zero).
 */

import { FieldReader, type GoStruct, type GoValue, goMap, goMarshal, parseJsonObject } from "../go-json.js";
import { canonicalIp, decodeCidr, encodeLegacyCidr } from "../wire-ip.js";

export const NODE_ADDRESS_TYPES = [
  "Hostname",
  "ExternalIP",
  "InternalIP",
  "ExternalDNS",
  "InternalDNS",
  "CiliumInternalIP",
] as const;
export type NodeAddressType = (typeof NODE_ADDRESS_TYPES)[number];

export interface NodeAddress {
  Type: NodeAddressType;
  IP: string;
}

/** Decoded node; CIDRs as canonical text ("10.244.0.0/24"), written in Cilium's legacy object form. */
export interface NodeValue {
  Name: string;
  Cluster: string;
  IPAddresses: NodeAddress[] | null;
  IPv4AllocCIDR: string | null;
  IPv4SecondaryAllocCIDRs: string[] | null;
  IPv6AllocCIDR: string | null;
  IPv6SecondaryAllocCIDRs: string[] | null;
  IPv4HealthIP: string;
  IPv6HealthIP: string;
  IPv4IngressIP: string;
  IPv6IngressIP: string;
  ClusterID: number;
  Source: string;
  EncryptionKey: number;
  Labels: Record<string, string> | null;
  Annotations: Record<string, string> | null;
  /** Cilium 1.15–1.19: the node's numeric identity (uint32); 0 from our writer. */
  NodeIdentity: number;
  WireguardPubKey: string;
  BootID: string;
}

/** Source Cilium's apiserver records for nodes it converted from a custom resource. */
export const NODE_SOURCE_CUSTOM_RESOURCE = "custom-resource";

export function emptyNode(name: string, cluster: string, clusterId: number): NodeValue {
  return {
    Name: name,
    Cluster: cluster,
    IPAddresses: null,
    IPv4AllocCIDR: null,
    IPv4SecondaryAllocCIDRs: null,
    IPv6AllocCIDR: null,
    IPv6SecondaryAllocCIDRs: null,
    IPv4HealthIP: "",
    IPv6HealthIP: "",
    IPv4IngressIP: "",
    IPv6IngressIP: "",
    ClusterID: clusterId,
    Source: NODE_SOURCE_CUSTOM_RESOURCE,
    EncryptionKey: 0,
    Labels: null,
    Annotations: null,
    NodeIdentity: 0,
    WireguardPubKey: "",
    BootID: "",
  };
}

const legacyCidr = (cidr: string): GoStruct => ({ ...encodeLegacyCidr(cidr) });
const cidrList = (list: string[] | null): GoValue => (list === null ? null : list.map(legacyCidr));
const stringMap = (map: Record<string, string> | null): GoValue =>
  map === null ? null : goMap(map, (v) => v);

export function encodeNode(node: NodeValue): string {
  const struct: GoStruct = {
    Name: node.Name,
    Cluster: node.Cluster,
    IPAddresses: node.IPAddresses === null ? null : node.IPAddresses.map((a) => ({ Type: a.Type, IP: a.IP })),
    IPv4AllocCIDR: node.IPv4AllocCIDR === null ? null : legacyCidr(node.IPv4AllocCIDR),
    IPv4SecondaryAllocCIDRs: cidrList(node.IPv4SecondaryAllocCIDRs),
    IPv6AllocCIDR: node.IPv6AllocCIDR === null ? null : legacyCidr(node.IPv6AllocCIDR),
    IPv6SecondaryAllocCIDRs: cidrList(node.IPv6SecondaryAllocCIDRs),
    IPv4HealthIP: node.IPv4HealthIP,
    IPv6HealthIP: node.IPv6HealthIP,
    IPv4IngressIP: node.IPv4IngressIP,
    IPv6IngressIP: node.IPv6IngressIP,
    ClusterID: node.ClusterID,
    Source: node.Source,
    EncryptionKey: node.EncryptionKey,
    Labels: stringMap(node.Labels),
    Annotations: stringMap(node.Annotations),
    NodeIdentity: node.NodeIdentity,
    WireguardPubKey: node.WireguardPubKey,
    BootID: node.BootID,
  };
  return goMarshal(struct);
}

function optionalIp(reader: FieldReader, field: string): string {
  const text = reader.string(field);
  return text === "" ? "" : canonicalIp(reader.key, field, text);
}

function cidrField(reader: FieldReader, field: string): string | null {
  const value = reader.object[field];
  return value === undefined || value === null ? null : decodeCidr(reader.key, field, value);
}

function cidrArray(reader: FieldReader, field: string): string[] | null {
  const list = reader.array(field);
  return list === null ? null : list.map((item, i) => decodeCidr(reader.key, `${field}[${i}]`, item));
}

/**
 * The node's addresses of the types we know. Cilium does not check address types (its
 * addressing.AddressType is a plain string), so an address of a type a newer Cilium may add is
 * legal: it is accepted and left out, like a consumer that has no use for it. Its IP must still be
 * an IP (Cilium decodes it into a net.IP, which also refuses zoned IPv6 addresses).
 */
function knownAddresses(reader: FieldReader, addresses: unknown[]): NodeAddress[] {
  const known: NodeAddress[] = [];
  addresses.forEach((item, i) => {
    const address = reader.element("IPAddresses", item, i);
    const type = address.string("Type");
    const ip = canonicalIp(reader.key, `IPAddresses[${i}].IP`, address.string("IP"));
    if ((NODE_ADDRESS_TYPES as readonly string[]).includes(type))
      known.push({ Type: type as NodeAddressType, IP: ip });
  });
  return known;
}

/**
 * Decodes what a Cilium writer puts under a node key. Checks types, IPs and CIDRs; does not
 * check which cluster it belongs to (see validateRemoteNode).
 */
export function decodeNode(key: string, raw: string | Buffer): NodeValue {
  const reader = new FieldReader(key, parseJsonObject(key, raw));
  const addresses = reader.array("IPAddresses");
  return {
    Name: reader.string("Name"),
    Cluster: reader.string("Cluster"),
    IPAddresses: addresses === null ? null : knownAddresses(reader, addresses),
    IPv4AllocCIDR: cidrField(reader, "IPv4AllocCIDR"),
    IPv4SecondaryAllocCIDRs: cidrArray(reader, "IPv4SecondaryAllocCIDRs"),
    IPv6AllocCIDR: cidrField(reader, "IPv6AllocCIDR"),
    IPv6SecondaryAllocCIDRs: cidrArray(reader, "IPv6SecondaryAllocCIDRs"),
    IPv4HealthIP: optionalIp(reader, "IPv4HealthIP"),
    IPv6HealthIP: optionalIp(reader, "IPv6HealthIP"),
    IPv4IngressIP: optionalIp(reader, "IPv4IngressIP"),
    IPv6IngressIP: optionalIp(reader, "IPv6IngressIP"),
    ClusterID: reader.uint("ClusterID", 32),
    Source: reader.string("Source"),
    EncryptionKey: reader.uint("EncryptionKey", 8),
    Labels: reader.stringMap("Labels"),
    Annotations: reader.stringMap("Annotations"),
    NodeIdentity: reader.uint("NodeIdentity", 32),
    WireguardPubKey: reader.string("WireguardPubKey"),
    BootID: reader.string("BootID"),
  };
}

/** The node's tunnel/encryption address: InternalIP first, else ExternalIP (IPv4 before IPv6). */
export function nodeIp(node: NodeValue, family: 4 | 6 = 4): string | undefined {
  const addresses = node.IPAddresses ?? [];
  const ofFamily = (a: NodeAddress) => (family === 4 ? !a.IP.includes(":") : a.IP.includes(":"));
  return (
    addresses.find((a) => a.Type === "InternalIP" && ofFamily(a))?.IP ??
    addresses.find((a) => a.Type === "ExternalIP" && ofFamily(a))?.IP
  );
}
