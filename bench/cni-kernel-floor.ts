/**
 * The kernel's own share of an endpoint's ADD+DEL, without agent or plugin: the same rtnetlink
 * requests the agent sends (agent/endpoints/netlink.ts) from this warm process, in a throwaway
 * node netns: with the two clsact direct-action filters per host veth (what the agent attaches by
 * default), with the same programs as tcx links instead (`--endpoint-attach tcx`), and with no
 * program. Each tcx attach, detach and device-removal uninstall waits an RCU grace
 * period under RTNL (kernel/bpf/tcx.c, tcx_entry_sync():
 * https://github.com/torvalds/linux/blob/master/include/net/tcx.h), so the first is the floor a
 * per-pod tcx datapath cannot go below.
 */
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { KernelNetlink } from "../agent/endpoints/netlink.js";
import { DEFAULT_OBJECT_DIR } from "../bpf/datapath/loader.js";
import {
  attachTcClassic,
  attachTcx,
  type BpfLink,
  BpfObject,
  inNetworkNamespace,
  interfaceIndex,
} from "../bpf/libbpf-ts/index.js";
import { runSync } from "../lib/exec.js";

const FIXTURE = join(DEFAULT_OBJECT_DIR, "testdata", "fixture.bpf.o");

export type FloorAttach = "tcx" | "clsact" | "none";

export class KernelFloor {
  private readonly nodeNs: string;
  private readonly namespaces = new Set<string>();
  private object?: BpfObject;
  private counter = 0;

  constructor(private readonly prefix: string) {
    this.nodeNs = `${prefix}k`;
  }

  setup(): void {
    this.object = BpfObject.open(FIXTURE).load();
    this.addNetns(this.nodeNs);
  }

  /** One create + delete; the programs (if any) attached after the create, as the agent does. */
  async pair(attach: FloorAttach): Promise<{ add: number; del: number }> {
    const podNs = `${this.prefix}k${++this.counter}`;
    this.addNetns(podNs);
    const nodePath = `/run/netns/${this.nodeNs}`;
    const netlink = new KernelNetlink(nodePath);
    const hostIf = `lxcf${randomBytes(5).toString("hex")}`;
    const links: BpfLink[] = [];
    try {
      let start = process.hrtime.bigint();
      await netlink.create({
        hostIf,
        hostMac: "02:00:00:00:00:01",
        podMac: "0a:00:00:00:00:02",
        netnsPath: `/run/netns/${podNs}`,
        podIf: "eth0",
        podIp: "10.254.0.2",
        mtu: 1450,
      });
      if (attach !== "none" && this.object) {
        const program = this.object.program("fixture_tc");
        inNetworkNamespace(nodePath, () => {
          const ifindex = interfaceIndex(hostIf);
          if (attach === "tcx")
            links.push(attachTcx(program, ifindex, "ingress"), attachTcx(program, ifindex, "egress"));
          // the clsact qdisc and its filters go with the device
          else
            for (const direction of ["ingress", "egress"] as const)
              attachTcClassic(program, ifindex, direction);
        });
      }
      const add = Number(process.hrtime.bigint() - start) / 1e6;
      start = process.hrtime.bigint();
      await netlink.remove(hostIf);
      const del = Number(process.hrtime.bigint() - start) / 1e6;
      return { add, del };
    } finally {
      for (const link of links) link.close(); // defunct with the device: closing costs nothing
      this.removeNetns(podNs);
    }
  }

  /** Everything it made; returns the problems rather than stopping at the first. */
  cleanup(): string[] {
    const problems: string[] = [];
    for (const netns of [...this.namespaces]) {
      try {
        this.removeNetns(netns);
      } catch (error) {
        problems.push(`netns ${netns}: ${(error as Error).message}`);
      }
    }
    this.object?.close();
    this.object = undefined;
    return problems;
  }

  private addNetns(name: string): void {
    runSync(["ip", "netns", "add", name]);
    this.namespaces.add(name);
  }

  private removeNetns(name: string): void {
    if (existsSync(`/run/netns/${name}`)) runSync(["ip", "netns", "del", name]);
    this.namespaces.delete(name);
  }
}
