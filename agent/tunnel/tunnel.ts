/**
 * The node's VXLAN device (collect-metadata: BPF sets the remote VTEP per packet from the ipcache)
 * and the host routes through it: one per remote pod CIDR via the CIDR's first address, resolved by a
 * permanent neigh entry to the remote node's deterministic VTEP MAC (tunnelMac in
 * datapath/desired.ts): no ARP crosses the tunnel, and the MAC never changes for a node IP.
 */
import { interfaceIndex } from "../../bpf/libbpf-ts/index.js";
import { CommandError, run } from "../../lib/exec.js";
import type { TunnelRoute } from "../datapath/desired.js";
import {
  dumpNeighbours4,
  dumpRoutes4,
  type NeighbourRecord,
  NUD_PERMANENT,
  parseNeighbour,
  parseRoute,
  type RouteRecord,
  RT_TABLE_MAIN,
} from "../netlink/dumps.js";
import { RtnetlinkSocket } from "../netlink/socket.js";

export const TUNNEL_DEVICE = "cm_vxlan";
/** Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14) headers: pods get the underlay MTU minus this. */
export const VXLAN_OVERHEAD = 50;

interface LinkJson {
  ifindex: number;
  address?: string;
  mtu?: number;
  linkinfo?: {
    info_kind?: string;
    info_data?: { external?: boolean; port?: number; collect_metadata?: boolean };
  };
}

export interface TunnelSpec {
  port: number;
  mtu: number;
  mac: string;
}

/** Creates the device if absent or different; returns its ifindex. Keeps a matching one (restart). */
export async function ensureTunnelDevice(spec: TunnelSpec): Promise<number> {
  let existing: LinkJson | undefined;
  try {
    [existing] = JSON.parse(
      await run(["ip", "-j", "-d", "link", "show", "dev", TUNNEL_DEVICE]),
    ) as LinkJson[];
  } catch (error) {
    // the device does not exist yet (created below); any other failure of `ip` is real
    if (!(error instanceof CommandError && /does not exist/.test(error.stderr))) throw error;
    existing = undefined;
  }
  const data = existing?.linkinfo?.info_data;
  const matches =
    existing?.linkinfo?.info_kind === "vxlan" &&
    (data?.external === true || data?.collect_metadata === true) &&
    data?.port === spec.port &&
    existing.address === spec.mac;
  if (existing && !matches) await run(["ip", "link", "del", TUNNEL_DEVICE]);
  if (!existing || !matches) {
    await run([
      "ip",
      "link",
      "add",
      TUNNEL_DEVICE,
      "address",
      spec.mac,
      "mtu",
      String(spec.mtu),
      "type",
      "vxlan",
      "external",
      "dstport",
      String(spec.port),
    ]);
  } else if (existing.mtu !== spec.mtu) {
    await run(["ip", "link", "set", TUNNEL_DEVICE, "mtu", String(spec.mtu)]);
  }
  await run(["ip", "link", "set", TUNNEL_DEVICE, "up"]);
  const [link] = JSON.parse(await run(["ip", "-j", "link", "show", "dev", TUNNEL_DEVICE])) as LinkJson[];
  return link.ifindex;
}

/** Makes the routes and neigh entries on the tunnel device exactly the desired ones. */
export async function syncTunnelRoutes(
  routes: readonly TunnelRoute[],
): Promise<{ added: number; removed: number }> {
  const { currentRoutes, currentNeigh } = await readTunnelState();
  const commands: string[] = [];
  const wantedRoutes = new Map(routes.map((r) => [r.cidr, r]));
  const wantedNeigh = new Map(routes.map((r) => [r.via, r.mac]));
  let added = 0;
  let removed = 0;
  for (const [via, mac] of wantedNeigh) {
    if (currentNeigh.find((n) => n.dst === via)?.lladdr?.toLowerCase() !== mac) {
      commands.push(`neigh replace ${via} lladdr ${mac} dev ${TUNNEL_DEVICE} nud permanent`);
    }
  }
  for (const route of routes) {
    const existing = currentRoutes.find((r) => r.dst === route.cidr);
    if (existing?.gateway !== route.via) {
      commands.push(`route replace ${route.cidr} via ${route.via} dev ${TUNNEL_DEVICE} onlink`);
      added++;
    }
  }
  for (const route of currentRoutes) {
    if (!wantedRoutes.has(route.dst)) {
      commands.push(`route del ${route.dst} dev ${TUNNEL_DEVICE}`);
      removed++;
    }
  }
  for (const neigh of currentNeigh) {
    if (!wantedNeigh.has(neigh.dst)) commands.push(`neigh del ${neigh.dst} dev ${TUNNEL_DEVICE}`);
  }
  if (commands.length > 0) await run(["ip", "-batch", "-"], { input: `${commands.join("\n")}\n` });
  return { added, removed };
}

/**
 * `ip -4 route show dev <tunnel>` (main table) and `ip -4 neigh show dev <tunnel> nud permanent`,
 * read over rtnetlink: this runs after every endpoint change, where two `ip` processes (forks of the
 * agent) cost ~13 ms next to the CNI request being served.
 */
async function readTunnelState(): Promise<{ currentRoutes: RouteRecord[]; currentNeigh: NeighbourRecord[] }> {
  const ifindex = interfaceIndex(TUNNEL_DEVICE);
  const socket = RtnetlinkSocket.open();
  try {
    const routes = (await socket.dump("route show", dumpRoutes4)).map(parseRoute);
    const neighbours = (await socket.dump("neigh show", dumpNeighbours4)).map(parseNeighbour);
    return {
      currentRoutes: routes.filter(
        (r): r is RouteRecord => r !== undefined && r.table === RT_TABLE_MAIN && r.oif === ifindex,
      ),
      currentNeigh: neighbours.filter(
        (n): n is NeighbourRecord =>
          n !== undefined && n.ifindex === ifindex && (n.state & NUD_PERMANENT) !== 0,
      ),
    };
  } finally {
    socket.close();
  }
}
