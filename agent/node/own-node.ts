/** What the agent learns about its own node: pod CIDR and address (from the Node or the underlay), boot id. */
import { readFileSync } from "node:fs";
import type { V1Node } from "@kubernetes/client-node";
import { run } from "../../lib/exec.js";
import type { Informer } from "../../lib/k8s/informer.js";
import { type NodeInfo, nodeInfo } from "../datapath/desired.js";

/** Our Node once it has a pod CIDR (the controller-manager assigns it), else undefined. Pure. */
export function ownNodeWithPodCidr(
  nodes: Pick<Informer<V1Node>, "get">,
  nodeName: string,
): NodeInfo | undefined {
  const node = nodes.get(nodeName);
  const info = node ? nodeInfo(node) : undefined;
  return info && info.podCidrs.length > 0 ? info : undefined;
}

/** The node's address when its Node has no InternalIP: the first IPv4 address of the underlay device. */
export async function underlayAddress(device: string): Promise<string> {
  const [link] = JSON.parse(await run(["ip", "-j", "-4", "addr", "show", "dev", device])) as {
    addr_info: { local: string }[];
  }[];
  const ip = link?.addr_info?.[0]?.local;
  if (!ip) throw new Error(`no IPv4 address on ${device} and no InternalIP on the Node`);
  return ip;
}

/** The kernel's boot id (published with the node: a changed one tells peers the node rebooted). */
export function bootId(): string | undefined {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    // no procfs boot id (not Linux, or a restricted /proc): the field is optional for peers
    return undefined;
  }
}
