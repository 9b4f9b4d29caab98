/** Names and addresses derived from a CNI attachment (container id + interface). Pure. */
import { createHash } from "node:crypto";

/** Link-local gateway every pod routes through; answered by a static neigh entry (no ARP). */
export const POD_GATEWAY = "169.254.1.1";

function digest(containerId: string, ifname: string): Buffer {
  return createHash("sha256").update(`${containerId}/${ifname}`).digest();
}

/** The endpoint's id and host-side interface name: lxc + 11 hex chars (14 ≤ IFNAMSIZ-1). */
export function endpointId(containerId: string, ifname: string): string {
  return `lxc${digest(containerId, ifname).toString("hex").slice(0, 11)}`;
}

function mac(firstByte: number, bytes: Buffer): string {
  return [firstByte, ...bytes.subarray(0, 5)].map((b) => b.toString(16).padStart(2, "0")).join(":");
}

/** Deterministic, locally administered unicast MACs, so a retried ADD recreates identical links. */
export function endpointMacs(containerId: string, ifname: string): { hostMac: string; podMac: string } {
  const hash = digest(containerId, ifname);
  return { hostMac: mac(0x02, hash.subarray(8)), podMac: mac(0x0a, hash.subarray(16)) };
}

export function isEndpointInterface(name: string): boolean {
  return /^lxc[0-9a-f]{11}$/.test(name);
}
