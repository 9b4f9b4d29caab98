/**
 * The kernel side of an endpoint, through iproute2 (`ip -batch`, one process per namespace):
 * a veth pair with the host side `lxc…` in the node's netns and the pod side in the pod's netns,
 * the pod's /32 address, a link-local gateway with a permanent neigh entry (no ARP needed, the
 * node has no proxy ARP) and a default route through it; on the host, a /32 route to the pod.
 */
import { run } from "../../lib/exec.js";
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
  create(spec: EndpointLinkSpec): Promise<void>;
  /** Removes the host side (the pod side goes with it). Absent = success. */
  remove(hostIf: string): Promise<void>;
  /** Host-side endpoint links present in the node's netns. */
  listHostLinks(): Promise<HostLink[]>;
  /** Whether the pod side carries the address (CHECK). */
  podHasAddress(netnsPath: string, podIf: string, podIp: string): Promise<boolean>;
}

const inPodNetns = (netnsPath: string, argv: string[]) => ["nsenter", `--net=${netnsPath}`, "--", ...argv];

function isMissingDevice(error: unknown): boolean {
  const text = String((error as Error)?.message ?? error);
  return /Cannot find device|does not exist|No such device/.test(text);
}

export class IprouteNetlink implements EndpointNetlink {
  async create(spec: EndpointLinkSpec): Promise<void> {
    await run(["ip", "-batch", "-"], {
      input: [
        `link add ${spec.hostIf} address ${spec.hostMac} mtu ${spec.mtu} type veth peer name ${spec.podIf} address ${spec.podMac} mtu ${spec.mtu} netns ${spec.netnsPath}`,
        `link set ${spec.hostIf} up`,
        `route replace ${spec.podIp}/32 dev ${spec.hostIf} scope link`,
        "",
      ].join("\n"),
    });
    await run(inPodNetns(spec.netnsPath, ["ip", "-batch", "-"]), {
      input: [
        "link set lo up",
        `link set ${spec.podIf} up`,
        `addr add ${spec.podIp}/32 dev ${spec.podIf}`,
        `route add ${POD_GATEWAY} dev ${spec.podIf} scope link`,
        `route add default via ${POD_GATEWAY} dev ${spec.podIf}`,
        `neigh replace ${POD_GATEWAY} lladdr ${spec.hostMac} dev ${spec.podIf} nud permanent`,
        "",
      ].join("\n"),
    });
  }

  async remove(hostIf: string): Promise<void> {
    try {
      await run(["ip", "link", "del", hostIf]);
    } catch (error) {
      if (!isMissingDevice(error)) throw error;
    }
  }

  async listHostLinks(): Promise<HostLink[]> {
    const links = JSON.parse((await run(["ip", "-j", "link", "show", "type", "veth"])) || "[]") as {
      ifname: string;
      ifindex: number;
      address: string;
    }[];
    return links.map((link) => ({ name: link.ifname, ifindex: link.ifindex, mac: link.address }));
  }

  async podHasAddress(netnsPath: string, podIf: string, podIp: string): Promise<boolean> {
    try {
      const out = await run(inPodNetns(netnsPath, ["ip", "-j", "-4", "addr", "show", "dev", podIf]));
      const [link] = JSON.parse(out || "[]") as { addr_info?: { local: string; prefixlen: number }[] }[];
      return (link?.addr_info ?? []).some((a) => a.local === podIp && a.prefixlen === 32);
    } catch {
      return false;
    }
  }
}
