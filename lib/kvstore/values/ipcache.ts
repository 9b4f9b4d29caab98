/**
 * `cilium/state/ip/v1/default/<ip-or-prefix>` — Cilium's IPIdentityPair
 * (https://github.com/cilium/cilium/blob/main/pkg/identity/identity.go).
 * Writers emit `"Mask": null` for host entries; readers treat a missing or null Mask the same.
 */
import { InvalidEntryError } from "../errors.js";
import { FieldReader, type GoStruct, goMarshal, parseJsonObject } from "../go-json.js";
import { canonicalIp, decodeMask, encodeMask } from "../wire-ip.js";

export interface NamedPort {
  Name: string;
  Port: number;
  Protocol: string;
}

export interface IPIdentityPair {
  IP: string;
  /** Prefix length for prefix entries; null for host entries (/32, /128). */
  prefixLength: number | null;
  /** Node hosting the endpoint (the tunnel endpoint), "" if none. */
  HostIP: string;
  ID: number;
  /** Encryption key index (IPsec SPI) of the endpoint. */
  Key: number;
  Metadata: string;
  K8sNamespace?: string;
  K8sPodName?: string;
  K8sServiceAccount?: string;
  NamedPorts?: NamedPort[];
}

/** The key suffix Cilium derives from the value (PrefixString): bare IP, or "ip/len". */
export function ipPairKeySuffix(pair: Pick<IPIdentityPair, "IP" | "prefixLength">): string {
  return pair.prefixLength === null ? pair.IP : `${pair.IP}/${pair.prefixLength}`;
}

const family = (ip: string): 4 | 6 => (ip.includes(":") ? 6 : 4);
const nonEmpty = (text: string | undefined) => (text ? text : undefined);

export function encodeIpIdentityPair(pair: IPIdentityPair): string {
  const struct: GoStruct = {
    IP: pair.IP,
    Mask: pair.prefixLength === null ? null : encodeMask(family(pair.IP), pair.prefixLength),
    HostIP: pair.HostIP,
    ID: pair.ID,
    Key: pair.Key,
    Metadata: pair.Metadata,
    K8sNamespace: nonEmpty(pair.K8sNamespace),
    K8sPodName: nonEmpty(pair.K8sPodName),
    K8sServiceAccount: nonEmpty(pair.K8sServiceAccount),
    NamedPorts:
      pair.NamedPorts && pair.NamedPorts.length > 0
        ? pair.NamedPorts.map((p) => ({ Name: p.Name, Port: p.Port, Protocol: p.Protocol }))
        : undefined,
  };
  return goMarshal(struct);
}

export function decodeIpIdentityPair(key: string, raw: string | Buffer): IPIdentityPair {
  const reader = new FieldReader(key, parseJsonObject(key, raw));
  const ipText = reader.string("IP");
  if (ipText === "") throw new InvalidEntryError(key, "missing-field", "IP is empty");
  const ip = canonicalIp(key, "IP", ipText);
  const maskText = reader.string("Mask");
  const hostIp = reader.string("HostIP");
  const pair: IPIdentityPair = {
    IP: ip,
    prefixLength: maskText === "" ? null : decodeMask(key, "Mask", maskText, family(ip)),
    HostIP: hostIp === "" ? "" : canonicalIp(key, "HostIP", hostIp),
    ID: reader.uint("ID", 32),
    Key: reader.uint("Key", 8),
    Metadata: reader.string("Metadata"),
  };
  for (const field of ["K8sNamespace", "K8sPodName", "K8sServiceAccount"] as const) {
    const value = reader.string(field);
    if (value !== "") pair[field] = value;
  }
  const namedPorts = reader.array("NamedPorts");
  if (namedPorts && namedPorts.length > 0) {
    pair.NamedPorts = namedPorts.map((item, i) => {
      const port = reader.element("NamedPorts", item, i);
      return { Name: port.string("Name"), Port: port.uint("Port", 16), Protocol: port.string("Protocol") };
    });
  }
  return pair;
}
