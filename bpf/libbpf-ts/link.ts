/**
 * Attaching programs. Every attach that the kernel supports as a bpf_link returns a BpfLink:
 * pin it to make the attachment outlive this process, unpin + close to detach.
 * tcx (kernel >= 6.6) goes through raw bpf_link_create with attach types 46/47: libbpf 1.1 has
 * no attach_tcx. tc clsact (netlink) is the fallback for older kernels and is not a link.
 */
import { closeSync, constants, openSync, unlinkSync } from "node:fs";
import { BpfError, check } from "./errors.js";
import { native, nativeAsync } from "./native.js";
import type { BpfProgram } from "./program.js";

export const AttachType = {
  CgroupInet4Connect: 10,
  CgroupInet6Connect: 11,
  CgroupUdp4Sendmsg: 14,
  CgroupUdp6Sendmsg: 15,
  CgroupUdp4Recvmsg: 19,
  CgroupUdp6Recvmsg: 20,
  CgroupInet4Getpeername: 29,
  CgroupInet6Getpeername: 30,
  Xdp: 37,
  TcxIngress: 46,
  TcxEgress: 47,
} as const;

export const LinkType = { Cgroup: 3, Xdp: 6, Tcx: 11 } as const;

export type TcDirection = "ingress" | "egress";

const BPF_LINK_INFO_SIZE = 48;

export class BpfLink {
  private closed = false;

  constructor(
    readonly fd: number,
    readonly description: string,
  ) {}

  static openPinned(path: string): BpfLink {
    return new BpfLink(check(native.bpf_obj_get(path), `bpf_obj_get(${path})`), path);
  }

  /**
   * Kernel link id, link type, the attached program's id, and for tcx/XDP links the interface
   * (0 once the device is gone and the link defunct).
   */
  info(): { id: number; programId: number; type: number; ifindex?: number } {
    const info = Buffer.alloc(BPF_LINK_INFO_SIZE);
    check(native.bpf_obj_get_info_by_fd(this.fd, info, [info.length]), `link ${this.description}: info`);
    const type = info.readUInt32LE(0);
    const result = { type, id: info.readUInt32LE(4), programId: info.readUInt32LE(8) };
    // union at offset 16: xdp { ifindex }, tcx { ifindex, attach_type }
    return type === LinkType.Tcx || type === LinkType.Xdp
      ? { ...result, ifindex: info.readUInt32LE(16) }
      : result;
  }

  /** Atomically replaces the attached program: no moment without a program (agent restarts, upgrades). */
  update(program: BpfProgram): void {
    check(
      native.bpf_link_update(this.fd, program.fd, null),
      `link ${this.description}: update to ${program.name}`,
    );
  }

  pin(path: string): void {
    check(native.bpf_obj_pin(this.fd, path), `link ${this.description}: pin(${path})`);
  }

  /** Removes a pin; the attachment lives on while this or another fd or pin refers to it. */
  static unpin(path: string): void {
    unlinkSync(path);
  }

  /** Detaches now, even if the link is pinned elsewhere, then closes the fd. */
  detach(): void {
    if (!this.closed) check(native.bpf_link_detach(this.fd), `link ${this.description}: detach`);
    this.close();
  }

  /** detach() on a worker thread (the kernel waits an RCU grace period). */
  async detachAsync(): Promise<void> {
    if (!this.closed) check(await nativeAsync.bpf_link_detach(this.fd), `link ${this.description}: detach`);
    this.close();
  }

  /** Drops this fd; the program stays attached only if the link is pinned. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

export function interfaceIndex(name: string): number {
  const index = native.if_nametoindex(name);
  if (index === 0) throw new BpfError(`if_nametoindex(${name})`, 19 /* ENODEV */);
  return index;
}

/** tcx: multi-program tc hook owned by a bpf_link (kernel >= 6.6). ifindex is in the caller's netns. */
export function attachTcx(program: BpfProgram, ifindex: number, direction: TcDirection): BpfLink {
  const type = direction === "ingress" ? AttachType.TcxIngress : AttachType.TcxEgress;
  const fd = check(
    native.bpf_link_create(program.fd, ifindex, type, null),
    `attach ${program.name} tcx ${direction} ifindex ${ifindex}`,
  );
  return new BpfLink(fd, `${program.name}@tcx-${direction}:${ifindex}`);
}

/**
 * attachTcx on a worker thread, so several attach at once and the event loop runs on while the
 * kernel waits its RCU grace period. ifindex is in the process's namespace (not a setns'd thread's).
 */
export async function attachTcxAsync(
  program: BpfProgram,
  ifindex: number,
  direction: TcDirection,
): Promise<BpfLink> {
  const type = direction === "ingress" ? AttachType.TcxIngress : AttachType.TcxEgress;
  const fd = check(
    await nativeAsync.bpf_link_create(program.fd, ifindex, type, null),
    `attach ${program.name} tcx ${direction} ifindex ${ifindex}`,
  );
  return new BpfLink(fd, `${program.name}@tcx-${direction}:${ifindex}`);
}

/** cgroup sock_addr and similar hooks. Refuses the cgroup root: cgroup hooks are not netns-scoped. */
export function attachCgroup(program: BpfProgram, cgroupPath: string, attachType: number): BpfLink {
  if (isCgroupRoot(cgroupPath)) {
    throw new BpfError(`attach ${program.name} to ${cgroupPath}: refusing to attach to a cgroup root`, 1);
  }
  const cgroupFd = openSync(cgroupPath, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    const fd = check(
      native.bpf_link_create(program.fd, cgroupFd, attachType, null),
      `attach ${program.name} to cgroup ${cgroupPath} (type ${attachType})`,
    );
    return new BpfLink(fd, `${program.name}@cgroup:${cgroupPath}`);
  } finally {
    closeSync(cgroupFd);
  }
}

function isCgroupRoot(path: string): boolean {
  const normalized = path.replace(/\/+$/, "");
  return ["/sys/fs/cgroup", "/sys/fs/cgroup/unified", ""].includes(normalized);
}

/** XDP as a bpf_link (native mode when the driver supports it, else the kernel refuses). */
export function attachXdp(program: BpfProgram, ifindex: number): BpfLink {
  const fd = check(
    native.bpf_link_create(program.fd, ifindex, AttachType.Xdp, null),
    `attach ${program.name} xdp ifindex ${ifindex}`,
  );
  return new BpfLink(fd, `${program.name}@xdp:${ifindex}`);
}

/** A legacy tc clsact filter (netlink); not a link: it stays until detachTcClassic or the device goes. */
export interface TcClassicAttachment {
  ifindex: number;
  direction: TcDirection;
  handle: number;
  priority: number;
  programId: number;
}

function tcHook(ifindex: number, direction: TcDirection): Buffer {
  // struct bpf_tc_hook { size_t sz; int ifindex; enum bpf_tc_attach_point attach_point; __u32 parent; }
  const hook = Buffer.alloc(24);
  hook.writeBigUInt64LE(24n, 0);
  hook.writeInt32LE(ifindex, 8);
  hook.writeUInt32LE(direction === "ingress" ? 1 : 2, 12);
  return hook;
}

function tcOptions(progFd: number, handle: number, priority: number, flags: number): Buffer {
  // struct bpf_tc_opts { size_t sz; int prog_fd; __u32 flags; __u32 prog_id; __u32 handle; __u32 priority; }
  const opts = Buffer.alloc(32);
  opts.writeBigUInt64LE(32n, 0);
  opts.writeInt32LE(progFd, 8);
  opts.writeUInt32LE(flags, 12);
  opts.writeUInt32LE(handle, 20);
  opts.writeUInt32LE(priority, 24);
  return opts;
}

const EEXIST = 17;
const BPF_TC_F_REPLACE = 1;

/** Fallback for kernels without tcx: clsact qdisc + direct-action cls_bpf filter. */
export function attachTcClassic(
  program: BpfProgram,
  ifindex: number,
  direction: TcDirection,
  { handle = 1, priority = 1 } = {},
): TcClassicAttachment {
  const hook = tcHook(ifindex, direction);
  const created = native.bpf_tc_hook_create(hook);
  if (created !== -EEXIST) check(created, `tc clsact on ifindex ${ifindex}`);
  const opts = tcOptions(program.fd, handle, priority, BPF_TC_F_REPLACE);
  check(native.bpf_tc_attach(hook, opts), `tc attach ${program.name} ${direction} ifindex ${ifindex}`);
  return { ifindex, direction, handle, priority, programId: opts.readUInt32LE(16) };
}

export function detachTcClassic(attachment: TcClassicAttachment): void {
  const hook = tcHook(attachment.ifindex, attachment.direction);
  const opts = tcOptions(0, attachment.handle, attachment.priority, 0);
  check(native.bpf_tc_detach(hook, opts), `tc detach ifindex ${attachment.ifindex} ${attachment.direction}`);
}
