/**
 * MeshEndpoint → ipcache entries (one per address), and the ownership rule for an IP claimed by
 * two endpoints (Cilium's CachedConverter: the first owner stays primary; when it goes away the
 * next one is published). Pure.
 */
import type { MeshEndpoint } from "../../lib/api/crds.js";
import type { IPIdentityPair } from "../../lib/kvstore/values/ipcache.js";
import { isIp } from "../../lib/kvstore/wire-ip.js";

/** The IPsec key index of an endpoint (uint8 on the wire); anything else means none. */
const validKey = (key: unknown): number =>
  typeof key === "number" && Number.isInteger(key) && key > 0 && key < 256 ? key : 0;

export function ipEntriesFor(endpoint: MeshEndpoint): IPIdentityPair[] {
  const status = endpoint.status;
  if (!status?.identity || !status.networking) return [];
  const hostIp = isIp(status.networking.node ?? "") ? status.networking.node : "";
  const entries: IPIdentityPair[] = [];
  for (const address of status.networking.addressing ?? []) {
    const addresses = [address.ipv4, (address as { ipv6?: string }).ipv6].filter(
      (ip): ip is string => typeof ip === "string" && isIp(ip),
    );
    for (const ip of addresses) {
      const entry: IPIdentityPair = {
        IP: ip,
        prefixLength: null,
        HostIP: hostIp,
        ID: status.identity.id,
        // Cilium: entry.Key = endpoint.Encryption.Key (clustermesh-apiserver/clustermesh/converters.go)
        Key: validKey(status.encryption?.key),
        Metadata: "",
        K8sNamespace: endpoint.metadata.namespace,
        K8sPodName: endpoint.metadata.name,
      };
      if (status.namedPorts?.length)
        entry.NamedPorts = status.namedPorts.map((p) => ({
          Name: p.name,
          Port: p.port,
          Protocol: p.protocol,
        }));
      entries.push(entry);
    }
  }
  return entries;
}

/** Which endpoint owns each IP; owners in arrival order. */
export class IpOwnership {
  private readonly owners = new Map<string, string[]>();
  private readonly ipsOf = new Map<string, Map<string, IPIdentityPair>>();

  /**
   * Replaces `owner`'s entries. Returns the IPs whose published entry may have changed (the caller
   * re-reads them with `published`).
   */
  set(owner: string, entries: readonly IPIdentityPair[]): string[] {
    const previous = this.ipsOf.get(owner) ?? new Map<string, IPIdentityPair>();
    const next = new Map(entries.map((e) => [e.IP, e]));
    const touched = new Set([...previous.keys(), ...next.keys()]);
    for (const ip of previous.keys()) {
      if (!next.has(ip))
        this.owners.set(
          ip,
          (this.owners.get(ip) ?? []).filter((o) => o !== owner),
        );
    }
    for (const ip of next.keys()) {
      const list = this.owners.get(ip) ?? [];
      if (!list.includes(owner)) list.push(owner);
      this.owners.set(ip, list);
    }
    for (const ip of touched) if ((this.owners.get(ip) ?? []).length === 0) this.owners.delete(ip);
    if (next.size > 0) this.ipsOf.set(owner, next);
    else this.ipsOf.delete(owner);
    return [...touched];
  }

  /** The entry to publish for `ip`: the primary owner's, or undefined. */
  published(ip: string): IPIdentityPair | undefined {
    const primary = this.owners.get(ip)?.[0];
    return primary === undefined ? undefined : this.ipsOf.get(primary)?.get(ip);
  }
}
