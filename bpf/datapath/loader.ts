/**
 * Loads the datapath objects of one node and attaches them. All objects share the node's maps
 * through LIBBPF_PIN_BY_NAME. Pin layout under pinRoot (a directory on a bpffs):
 *   maps/cm_*                       the maps (see maps.ts)
 *   links/from-pod-<name>            tcx ingress on an endpoint's host veth
 *   links/to-pod-<name>              tcx egress on an endpoint's host veth
 *   links/tunnel-ingress             tcx ingress on the VXLAN collect-metadata device
 *   links/tunnel-egress              tcx egress on it (tunnel key for the node's own traffic)
 *   links/from-netdev                tcx ingress on the node's underlay device (NodePort from outside)
 *   links/sock-<hook>-<name>         cgroup sock_addr hooks ({connect,sendmsg,recvmsg,getpeername}{4,6})
 * Links are pinned so the datapath keeps working across agent restarts; detaching = unpinning.
 * On kernels without tcx (< 6.6) the tc programs go on a clsact qdisc instead (tcAttachMode "tc",
 * or "auto" falls back when the kernel refuses the tcx attach type). Those filters are not links:
 * they are tracked in memory, replaced on re-attach after a restart, and removed with the device.
 */
import { existsSync, mkdirSync, readdirSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  AttachType,
  attachCgroup,
  attachTcClassic,
  attachTcx,
  attachTcxAsync,
  BpfError,
  BpfLink,
  BpfObject,
  type BpfProgram,
  detachTcClassic,
  inNetworkNamespace,
  isErrno,
  type TcClassicAttachment,
} from "../libbpf-ts/index.js";
import { DatapathMaps, mapsDirectory } from "./maps.js";

export const DEFAULT_OBJECT_DIR = fileURLToPath(new URL("../../../bpf/build/", import.meta.url));

export const ProgramName = {
  fromPod: "cm_from_pod",
  toPod: "cm_to_pod",
  tunnelIngress: "cm_tunnel_ingress",
  tunnelEgress: "cm_tunnel_egress",
  fromNetdev: "cm_from_netdev",
  sockConnect4: "cm_sock4_connect",
  sockSendmsg4: "cm_sock4_sendmsg",
  sockRecvmsg4: "cm_sock4_recvmsg",
  sockGetpeername4: "cm_sock4_getpeername",
  sockConnect6: "cm_sock6_connect",
  sockSendmsg6: "cm_sock6_sendmsg",
  sockRecvmsg6: "cm_sock6_recvmsg",
  sockGetpeername6: "cm_sock6_getpeername",
} as const;

const OBJECT_FILES = ["from_pod.bpf.o", "to_pod.bpf.o", "tunnel.bpf.o", "sock_lb.bpf.o", "from_netdev.bpf.o"];

const SOCKET_HOOKS = [
  ["connect4", ProgramName.sockConnect4, AttachType.CgroupInet4Connect],
  ["sendmsg4", ProgramName.sockSendmsg4, AttachType.CgroupUdp4Sendmsg],
  ["recvmsg4", ProgramName.sockRecvmsg4, AttachType.CgroupUdp4Recvmsg],
  ["getpeername4", ProgramName.sockGetpeername4, AttachType.CgroupInet4Getpeername],
  ["connect6", ProgramName.sockConnect6, AttachType.CgroupInet6Connect],
  ["sendmsg6", ProgramName.sockSendmsg6, AttachType.CgroupUdp6Sendmsg],
  ["recvmsg6", ProgramName.sockRecvmsg6, AttachType.CgroupUdp6Recvmsg],
  ["getpeername6", ProgramName.sockGetpeername6, AttachType.CgroupInet6Getpeername],
] as const;

export type TcAttachMode = "tcx" | "tc" | "auto";
/**
 * How an endpoint's two programs go on its host veth. "tc" (default): clsact direct-action filters.
 * "tcx": pinned tcx links. Every tcx attach and detach waits an RCU grace period under RTNL
 * (tcx_entry_sync(), https://github.com/torvalds/linux/blob/master/include/net/tcx.h), which made
 * the kernel's share of a pod's ADD+DEL 80.6 ms against 29.5 ms with clsact filters on this
 * machine (bench/cni.ts, "kernel only" rows). The node's own devices keep tcx: they attach once.
 */
export type EndpointAttachMode = "tc" | "tcx";

export interface LoadOptions {
  /** Per-node directory on a bpffs. */
  pinRoot: string;
  objectDir?: string;
  /** How tc programs are attached: tcx links, legacy clsact filters, or tcx with fallback (default). */
  tcAttachMode?: TcAttachMode;
  endpointAttachMode?: EndpointAttachMode;
}

export interface AttachOptions {
  /** Network namespace (path, e.g. /run/netns/x) the interface lives in; default: the caller's. */
  netnsPath?: string;
}

interface ClassicFilter {
  attachment: TcClassicAttachment;
  netnsPath?: string;
}

export class Datapath {
  private readonly classicFilters = new Map<string, ClassicFilter>();

  private constructor(
    readonly pinRoot: string,
    private readonly objects: BpfObject[],
    readonly maps: DatapathMaps,
    private readonly tcAttachMode: TcAttachMode,
    private readonly endpointAttachMode: EndpointAttachMode,
  ) {}

  static load(options: LoadOptions): Datapath {
    const objectDir = options.objectDir ?? DEFAULT_OBJECT_DIR;
    const objects: BpfObject[] = [];
    try {
      for (const file of OBJECT_FILES) {
        objects.push(
          BpfObject.open(join(objectDir, file), { pinRoot: mapsDirectory(options.pinRoot) }).load(),
        );
      }
      mkdirSync(join(options.pinRoot, "links"), { recursive: true });
      return new Datapath(
        options.pinRoot,
        objects,
        DatapathMaps.open(options.pinRoot),
        options.tcAttachMode ?? "auto",
        options.endpointAttachMode ?? "tc",
      );
    } catch (error) {
      for (const object of objects) object.close();
      throw error;
    }
  }

  program(name: string): BpfProgram {
    for (const object of this.objects) {
      const found = object.programs().find((program) => program.name === name);
      if (found) return found;
    }
    throw new Error(`no datapath program ${name}`);
  }

  linkPath(name: string): string {
    return join(this.pinRoot, "links", name);
  }

  /**
   * from-pod on ingress and to-pod on egress of an endpoint's host-side veth, as clsact filters or
   * tcx links (EndpointAttachMode). Either replaces what a previous run attached in place (a filter
   * with the same handle and priority, a pinned link on the same device), so a restarted agent
   * leaves no gap; the other mode's leftovers (an agent that changed modes) are removed after.
   */
  attachEndpoint(endpointName: string, interfaceIndex: number, options: AttachOptions = {}): void {
    for (const [linkName, programName, direction] of endpointPrograms(endpointName)) {
      if (this.endpointAttachMode === "tc") {
        this.attachClassic(linkName, programName, interfaceIndex, direction, options);
        this.unpinLink(linkName);
      } else {
        this.attachTcxPinned(linkName, programName, interfaceIndex, direction, options);
        // not after the fallback to a filter on kernels without tcx: that filter is the attachment
        if (!this.classicFilters.has(linkName))
          this.removeClassicLeftover(interfaceIndex, direction, options);
      }
    }
  }

  detachEndpoint(endpointName: string): void {
    for (const [linkName] of endpointPrograms(endpointName)) this.unpin(linkName);
  }

  /**
   * attachEndpoint for an interface in this process's own namespace (the agent's). tcx links are
   * attached off the event loop: each waits an RCU grace period in the kernel (~12 ms here; the
   * kernel runs a device's two attaches one after the other under RTNL), which would otherwise stall
   * the agent. clsact filters do not wait.
   */
  async attachEndpointAsync(endpointName: string, interfaceIndex: number): Promise<void> {
    if (this.endpointAttachMode === "tc" || this.tcAttachMode === "tc")
      return this.attachEndpoint(endpointName, interfaceIndex);
    const attach = async (linkName: string, programName: string, direction: "ingress" | "egress") => {
      const program = this.program(programName);
      // swapping the program of a link that survived a restart is quick: only new links wait
      if (!this.updatePinnedLink(linkName, program, interfaceIndex)) {
        try {
          this.pinAndClose(await attachTcxAsync(program, interfaceIndex, direction), linkName);
        } catch (error) {
          if (this.tcAttachMode === "tcx" || !(error instanceof BpfError && error.code === "EINVAL"))
            throw error;
          this.attachTcxPinned(linkName, programName, interfaceIndex, direction, {});
          return;
        }
      }
      this.removeClassicLeftover(interfaceIndex, direction, {});
    };
    await Promise.all(endpointPrograms(endpointName).map((args) => attach(...args)));
  }

  /** detachEndpoint off the event loop (see attachEndpointAsync). */
  async detachEndpointAsync(endpointName: string): Promise<void> {
    await Promise.all(endpointPrograms(endpointName).map(([linkName]) => this.unpinAsync(linkName)));
  }

  /**
   * tunnel ingress and egress on the VXLAN collect-metadata device. The egress program gives the
   * node's own packets (routed to the device by the kernel) their tunnel key.
   */
  attachTunnel(interfaceIndex: number, options: AttachOptions = {}): void {
    this.attachTcxPinned("tunnel-ingress", ProgramName.tunnelIngress, interfaceIndex, "ingress", options);
    this.attachTcxPinned("tunnel-egress", ProgramName.tunnelEgress, interfaceIndex, "egress", options);
  }

  /**
   * from-netdev on the node's underlay device: NodePort for clients outside the node. Needs
   * maps.setNodeConfig (until then it passes everything).
   */
  attachNetdev(interfaceIndex: number, options: AttachOptions = {}): void {
    this.attachTcxPinned("from-netdev", ProgramName.fromNetdev, interfaceIndex, "ingress", options);
  }

  /** Socket LB hooks on a per-pod or per-node cgroup (never a cgroup root: attachCgroup refuses). */
  attachSocketLb(name: string, cgroupPath: string): void {
    for (const [hook, program, type] of SOCKET_HOOKS) {
      const link = attachCgroup(this.program(program), cgroupPath, type);
      this.pinAndClose(link, `sock-${hook}-${name}`);
    }
  }

  detachSocketLb(name: string): void {
    for (const [hook] of SOCKET_HOOKS) this.unpin(`sock-${hook}-${name}`);
  }

  /** Names of the attachments: pinned links plus clsact filters made by this instance. */
  attachedLinks(): string[] {
    const dir = join(this.pinRoot, "links");
    const pinned = existsSync(dir) ? readdirSync(dir) : [];
    return [...pinned, ...this.classicFilters.keys()].sort();
  }

  /** Detaches everything this node attached (pinned links). Maps stay pinned. */
  detachAll(): void {
    for (const name of this.attachedLinks()) this.unpin(name);
  }

  /** Releases our fds; pinned maps and links stay in the kernel. */
  close(): void {
    this.maps.close();
    for (const object of this.objects) object.close();
  }

  private attachTcxPinned(
    linkName: string,
    programName: string,
    interfaceIndex: number,
    direction: "ingress" | "egress",
    options: AttachOptions,
  ): void {
    const program = this.program(programName);
    if (this.tcAttachMode !== "tc") {
      if (this.updatePinnedLink(linkName, program, interfaceIndex)) return;
      try {
        this.pinAndClose(
          inNetnsOf(options, () => attachTcx(program, interfaceIndex, direction)),
          linkName,
        );
        return;
      } catch (error) {
        // EINVAL: this kernel does not know the tcx attach types
        if (this.tcAttachMode === "tcx" || !(error instanceof BpfError && error.code === "EINVAL"))
          throw error;
      }
    }
    this.attachClassic(linkName, programName, interfaceIndex, direction, options);
  }

  /** A clsact filter (handle 1, priority 1); replaces the program of one already there in place. */
  private attachClassic(
    linkName: string,
    programName: string,
    interfaceIndex: number,
    direction: "ingress" | "egress",
    options: AttachOptions,
  ): void {
    const program = this.program(programName);
    const attachment = inNetnsOf(options, () => attachTcClassic(program, interfaceIndex, direction));
    this.classicFilters.set(linkName, { attachment, netnsPath: options.netnsPath });
  }

  /** The clsact filter a run in "tc" endpoint mode left on this device (none is fine). */
  private removeClassicLeftover(
    interfaceIndex: number,
    direction: "ingress" | "egress",
    options: AttachOptions,
  ): void {
    try {
      inNetnsOf(options, () =>
        detachTcClassic({ ifindex: interfaceIndex, direction, handle: 1, priority: 1, programId: 0 }),
      );
    } catch (error) {
      if (!(error instanceof BpfError && ["ENOENT", "ENODEV", "EINVAL"].includes(error.code))) throw error;
    }
  }

  /**
   * After an agent restart the pinned link is still attached: swap its program in place rather than
   * detach + attach, which would leave the interface without a program for a moment. A pin for
   * another interface (endpoint re-created) or a defunct one (device gone) is replaced instead.
   */
  private updatePinnedLink(linkName: string, program: BpfProgram, interfaceIndex: number): boolean {
    const link = this.pinnedLinkOn(linkName, interfaceIndex);
    if (!link) return false;
    try {
      link.update(program);
      return true;
    } catch (error) {
      if (isErrno(error, "ENOLINK")) return false;
      throw error;
    } finally {
      link.close();
    }
  }

  /** The pinned link of this name if it is attached to this interface, else undefined. */
  private pinnedLinkOn(linkName: string, interfaceIndex: number): BpfLink | undefined {
    const path = this.linkPath(linkName);
    if (!existsSync(path)) return undefined;
    const link = BpfLink.openPinned(path);
    try {
      if (link.info().ifindex === interfaceIndex) return link;
    } catch (error) {
      link.close();
      throw error;
    }
    link.close();
    return undefined;
  }

  private pinAndClose(link: BpfLink, linkName: string): void {
    try {
      const path = this.linkPath(linkName);
      if (existsSync(path)) unlinkSync(path); // re-attach replaces the previous attachment
      link.pin(path);
    } finally {
      link.close();
    }
  }

  private async unpinAsync(linkName: string): Promise<void> {
    const path = this.linkPath(linkName);
    if (this.classicFilters.has(linkName) || !existsSync(path)) return this.unpin(linkName);
    const link = BpfLink.openPinned(path);
    try {
      await link.detachAsync();
    } catch {
      // already detached, e.g. the interface was deleted: the pin is all that is left
    } finally {
      link.close();
      unlinkSync(path);
    }
  }

  private unpin(linkName: string): void {
    const filter = this.classicFilters.get(linkName);
    if (filter) {
      this.classicFilters.delete(linkName);
      const detach = () => detachTcClassic(filter.attachment);
      try {
        if (filter.netnsPath) inNetworkNamespace(filter.netnsPath, detach);
        else detach();
      } catch (error) {
        // the device (and its filters) may already be gone
        if (!(error instanceof BpfError && ["ENOENT", "ENODEV", "EINVAL"].includes(error.code))) throw error;
      }
      return;
    }
    this.unpinLink(linkName);
  }

  /** Detaches and removes the pinned link of this name, if any. */
  private unpinLink(linkName: string): void {
    const path = this.linkPath(linkName);
    if (!existsSync(path)) return;
    // detach explicitly: a defunct link (device gone) or another holder must not keep it alive
    const link = BpfLink.openPinned(path);
    try {
      link.detach();
    } catch {
      // already detached, e.g. the interface was deleted: the pin is all that is left
    } finally {
      link.close();
      unlinkSync(path);
    }
  }
}

function endpointPrograms(endpointName: string): Array<[string, string, "ingress" | "egress"]> {
  return [
    [`from-pod-${endpointName}`, ProgramName.fromPod, "ingress"],
    [`to-pod-${endpointName}`, ProgramName.toPod, "egress"],
  ];
}

function inNetnsOf<T>(options: AttachOptions, fn: () => T): T {
  return options.netnsPath ? inNetworkNamespace(options.netnsPath, fn) : fn();
}
