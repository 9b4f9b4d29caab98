import { closeSync } from "node:fs";
import { check } from "./errors.js";
import { addressOf, native } from "./native.js";

export const ProgramType = {
  SocketFilter: 1,
  SchedCls: 3,
  Xdp: 6,
  CgroupSockAddr: 18,
} as const;

export interface TestRunOptions {
  /** The packet (for tc: starting at the Ethernet header). */
  data: Buffer;
  /** Run the program this many times (the kernel reports the average duration). */
  repeat?: number;
  /** Room for the output packet; defaults to the input length plus 256 bytes of headroom for growth. */
  dataOutSize?: number;
  /** Optional context in (e.g. a struct __sk_buff for tc programs). */
  context?: Buffer;
}

export interface TestRunResult {
  /** The program's return code (e.g. TC_ACT_OK 0, TC_ACT_SHOT 2, TC_ACT_REDIRECT 7). */
  returnValue: number;
  /** The packet as the program left it. */
  data: Buffer;
  /** Average run time per repetition in nanoseconds, as measured by the kernel. */
  durationNs: number;
}

const TEST_RUN_OPTS_SIZE = 80;

/** A loaded BPF program: pin it, test-run it, attach it with the functions in link.ts. */
export class BpfProgram {
  private closed = false;

  constructor(
    readonly fd: number,
    readonly name: string,
    readonly sectionName: string,
    readonly type: number,
    /** false when the fd belongs to a BpfObject (closed with it). */
    private readonly ownsFd: boolean,
  ) {}

  static openPinned(path: string, name = path.split("/").pop() ?? path): BpfProgram {
    const fd = check(native.bpf_obj_get(path), `bpf_obj_get(${path})`);
    return new BpfProgram(fd, name, "", 0, true);
  }

  pin(path: string): void {
    check(native.bpf_obj_pin(this.fd, path), `program ${this.name}: pin(${path})`);
  }

  /** BPF_PROG_TEST_RUN: runs the program on a crafted packet without attaching it anywhere. */
  testRun(options: TestRunOptions): TestRunResult {
    const dataOut = Buffer.alloc(options.dataOutSize ?? options.data.length + 256);
    // struct bpf_test_run_opts (libbpf 1.1.2): sz@0 data_in@8 data_out@16 data_size_in@24
    // data_size_out@28 ctx_in@32 ctx_out@40 ctx_size_in@48 ctx_size_out@52 retval@56 repeat@60 duration@64
    const opts = Buffer.alloc(TEST_RUN_OPTS_SIZE);
    const dataIn = Buffer.from(options.data); // the kernel only reads it, but keep the caller's intact
    opts.writeBigUInt64LE(BigInt(TEST_RUN_OPTS_SIZE), 0);
    opts.writeBigUInt64LE(addressOf(dataIn), 8);
    opts.writeBigUInt64LE(addressOf(dataOut), 16);
    opts.writeUInt32LE(dataIn.length, 24);
    opts.writeUInt32LE(dataOut.length, 28);
    const context = options.context;
    if (context) {
      opts.writeBigUInt64LE(addressOf(context), 32);
      opts.writeUInt32LE(context.length, 48);
    }
    opts.writeInt32LE(options.repeat ?? 1, 60);
    check(native.bpf_prog_test_run_opts(this.fd, opts), `program ${this.name}: test_run`);
    keepAlive(dataIn, context); // their addresses were inside opts: they must outlive the call
    const outLength = opts.readUInt32LE(28);
    return {
      returnValue: opts.readUInt32LE(56),
      data: Buffer.from(dataOut.subarray(0, outLength)),
      durationNs: opts.readUInt32LE(64),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsFd) closeSync(this.fd);
  }
}

/** Referencing buffers after a native call so the GC cannot free memory the kernel still used. */
function keepAlive(...buffers: Array<Buffer | undefined>): number {
  return buffers.reduce((total, buffer) => total + (buffer?.length ?? 0), 0);
}
