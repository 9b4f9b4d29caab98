/**
 * The node's own networking, set up (or, after a restart, found in place and adopted) before any
 * endpoint is re-attached: IPv4 forwarding, the VXLAN device with the tunnel program, NodePort on
 * the underlay device, socket LB on the pods' cgroup root.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { DatapathController } from "../datapath/controller.js";
import { tunnelMac } from "../datapath/desired.js";
import { ensureTunnelDevice, VXLAN_OVERHEAD } from "../tunnel/tunnel.js";

/** Returns the tunnel device's ifindex. */
export async function setUpNodeNetworking(
  datapath: DatapathController,
  /** The agent's flags of the same names. */
  config: { tunnelPort: number; mtu: number; underlayInterface: string; cgroupRoot: string },
  nodeIp: string,
): Promise<number> {
  writeSysctl("net/ipv4/ip_forward", "1");
  const tunnelIfindex = await ensureTunnelDevice({
    port: config.tunnelPort,
    mtu: config.mtu - VXLAN_OVERHEAD,
    mac: tunnelMac(nodeIp),
  });
  datapath.configureTunnel(tunnelIfindex);
  // NodePort from other nodes' host networks and outside hosts; the node's own traffic into the tunnel
  datapath.configureNodePort(nodeIp, config.underlayInterface);
  // the pods' cgroup root may not exist yet (the kubelet creates pod cgroups below it lazily)
  mkdirSync(config.cgroupRoot, { recursive: true });
  datapath.attachSocketLb(config.cgroupRoot);
  return tunnelIfindex;
}

/** /proc/sys/net is per network namespace: the agent's own (the node's). */
function writeSysctl(path: string, value: string): void {
  writeFileSync(join("/proc/sys", path), value);
}
