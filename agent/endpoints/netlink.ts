/**
 * The kernel side of an endpoint: a veth pair with the host side `lxc…` in the node's netns and
 * the pod side in the pod's netns, the pod's /32 address, a link-local gateway with a permanent
 * neigh entry (no ARP needed, the node has no proxy ARP) and a default route through it; on the
 * host, a /32 route to the pod.
 * The ADD/DEL path talks rtnetlink from the agent's process (agent/netlink/; an `ip` process
 * per namespace cost ~4–6 ms each); the rarely used listing and CHECK still ask iproute2.
 */
import { closeSync, openSync } from "node:fs";
import { inNetworkNamespace, interfaceIndex } from "../../bpf/libbpf-ts/index.js";
import { run } from "../../lib/exec.js";
import {
  addAddress32,
  addDefaultRoute,
  addVeth,
  deleteLink,
  linkRoute32,
  linkUp,
  permanentNeighbour,
} from "../netlink/messages.js";
import { NetlinkError, RtnetlinkSocket, rtnetlinkBatch } from "../netlink/socket.js";
import { POD_GATEWAY } from "./naming.js";

export interface EndpointLinkSpec {
  hostIf: string;
  hostMac: string;
  podMac: string;
  /** CNI_NETNS: a path (/run/netns/x or /proc/<pid>/ns/net) */
  netnsPath: string;
  podIf: string;
  podIp: string;
  mtu: number;
}

export interface HostLink {
  name: string;
  ifindex: number;
  mac: string;
}

export interface EndpointNetlink {
  /** Creates the veth pair and the pod's addresses and routes; resolves to the host side's ifindex. */
  create(spec: EndpointLinkSpec): Promise<number>;
  /** Removes the host side (the pod side goes with it). Absent = success. */
  remove(hostIf: string): Promise<void>;
  /** Host-side endpoint links present in the node's netns. */
  listHostLinks(): Promise<HostLink[]>;
  /** Whether the pod side carries the address (CHECK). */
  podHasAddress(netnsPath: string, podIf: string, podIp: string): Promise<boolean>;
}

const inNetnsAt = (netnsPath: string, argv: string[]) => ["nsenter", `--net=${netnsPath}`, "--", ...argv];

export class KernelNetlink implements EndpointNetlink {
  /** hostNetnsPath: the node's netns when it is not the agent's own (tests). */
  constructor(private readonly hostNetnsPath?: string) {}

  private hostIndex(name: string): number {
    const lookup = () => interfaceIndex(name);
    return this.hostNetnsPath ? inNetworkNamespace(this.hostNetnsPath, lookup) : lookup();
  }

  async create(spec: EndpointLinkSpec): Promise<number> {
    const host = RtnetlinkSocket.open(this.hostNetnsPath);
    const podNetnsFd = openSync(spec.netnsPath, "r");
    let hostIndex: number;
    try {
      await host.request(addVeth({ ...spec, podNetnsFd }));
      await host.request(linkUp(spec.hostIf));
      hostIndex = this.hostIndex(spec.hostIf);
      await host.request(linkRoute32(spec.podIp, hostIndex, "replace"));
    } finally {
      closeSync(podNetnsFd);
      host.close();
    }
    const podIndex = inNetworkNamespace(spec.netnsPath, () => interfaceIndex(spec.podIf));
    await rtnetlinkBatch(
      [
        linkUp("lo"),
        linkUp(spec.podIf),
        addAddress32(spec.podIp, podIndex),
        linkRoute32(POD_GATEWAY, podIndex, "add"),
        addDefaultRoute(POD_GATEWAY, podIndex),
        permanentNeighbour(POD_GATEWAY, spec.hostMac, podIndex),
      ],
      spec.netnsPath,
    );
    return hostIndex;
  }

  async remove(hostIf: string): Promise<void> {
    try {
      await rtnetlinkBatch([deleteLink(hostIf)], this.hostNetnsPath);
    } catch (error) {
      if (!(error instanceof NetlinkError && error.code === "ENODEV")) throw error;
    }
  }

  async listHostLinks(): Promise<HostLink[]> {
    const argv = ["ip", "-j", "link", "show", "type", "veth"];
    const out = await run(this.hostNetnsPath ? inNetnsAt(this.hostNetnsPath, argv) : argv);
    const links = JSON.parse(out || "[]") as {
      ifname: string;
      ifindex: number;
      address: string;
    }[];
    return links.map((link) => ({ name: link.ifname, ifindex: link.ifindex, mac: link.address }));
  }

  async podHasAddress(netnsPath: string, podIf: string, podIp: string): Promise<boolean> {
    try {
      const out = await run(inNetnsAt(netnsPath, ["ip", "-j", "-4", "addr", "show", "dev", podIf]));
      const [link] = JSON.parse(out || "[]") as { addr_info?: { local: string; prefixlen: number }[] }[];
      return (link?.addr_info ?? []).some((a) => a.local === podIp && a.prefixlen === 32);
    } catch {
      return false;
    }
  }
}
