/**
 * What the datapath knew about an address when it forwarded a packet, rebuilt in userspace from the
 * same desired state the maps were programmed from: the identity (local endpoint, else the most
 * specific ipcache entry, else world) and the tunnel peer. The flow event leaves these out to keep
 * the datapath's per-packet cost low (dp_flow.h); this fills them in.
 */
import { type Cidr, cidrContains, parseCidr } from "../../lib/cidr.js";
import { type DesiredDatapathState, expandRemoteNodes } from "../datapath/reconcile.js";
import { type FlowEvent, isTunnelled } from "./event.js";

export const WORLD_IDENTITY = 2;

interface Entry {
  identity: number;
  tunnelEndpoint?: string;
  remoteCluster: boolean;
}

export interface AddressInfo extends Entry {
  /** a pod of this node */
  local: boolean;
}

export class AddressBook {
  private readonly hosts = new Map<string, AddressInfo>();
  /** prefixes other than single hosts, most specific first */
  private readonly prefixes: Array<{ cidr: Cidr; entry: Entry }> = [];

  constructor(state: Pick<DesiredDatapathState, "endpoints" | "remoteNodes" | "ipcache">) {
    for (const entry of [...expandRemoteNodes(state.remoteNodes), ...state.ipcache]) {
      const cidr = parseCidr(
        entry.prefix.includes("/")
          ? entry.prefix
          : `${entry.prefix}/${entry.prefix.includes(":") ? 128 : 32}`,
      );
      const value = {
        identity: entry.identity,
        tunnelEndpoint: entry.tunnelEndpoint,
        remoteCluster: entry.remoteCluster === true,
      };
      const hostBits = cidr.family === 4 ? 32 : 128;
      if (cidr.prefixLength === hostBits)
        this.hosts.set(entry.prefix.split("/")[0], { ...value, local: false });
      else this.prefixes.push({ cidr, entry: value });
    }
    this.prefixes.sort((a, b) => b.cidr.prefixLength - a.cidr.prefixLength);
    for (const endpoint of state.endpoints) {
      this.hosts.set(endpoint.address, { identity: endpoint.identity, remoteCluster: false, local: true });
    }
  }

  lookup(address: string): AddressInfo | undefined {
    const host = this.hosts.get(address);
    if (host) return host;
    for (const { cidr, entry } of this.prefixes) {
      if (cidrContains(cidr, address)) return { ...entry, local: false };
    }
    return undefined;
  }

  identityOf(address: string): number {
    return this.lookup(address)?.identity ?? WORLD_IDENTITY;
  }

  /** The event with identities and tunnel peer filled in where the datapath left them out. */
  resolve(event: FlowEvent): FlowEvent {
    if (!event.family) return event;
    const resolved = { ...event };
    if (!resolved.sourceIdentity) resolved.sourceIdentity = this.identityOf(event.source);
    if (!resolved.destinationIdentity) resolved.destinationIdentity = this.identityOf(event.destination);
    if (!resolved.tunnelPeer && isTunnelled(event)) {
      const peer = this.lookup(event.destination)?.tunnelEndpoint;
      if (peer) resolved.tunnelPeer = peer;
    }
    return resolved;
  }
}
