/**
 * A NETLINK_ROUTE socket in the agent's process, through libc (koffi), in place of an `ip`
 * process per step: a fork+exec of iproute2 costs several ms, a netlink request tens of µs.
 * The kernel handles a request inside send() (under RTNL, which a concurrent tcx attach holds for
 * an RCU grace period), so send() runs on a koffi worker thread and the event loop runs on; the
 * acknowledgement is queued by the time send() returns. One socket per operation, so concurrent
 * ADDs/DELs never read each other's acknowledgements.
 */
import { closeSync } from "node:fs";
import { constants } from "node:os";
import koffi from "koffi";
import { inNetworkNamespace } from "../../bpf/libbpf-ts/index.js";
import { NLMSG_DONE, NLMSG_ERROR, splitMessages } from "./dumps.js";
import { ackFor, type RtRequest } from "./messages.js";

const libc = koffi.load("libc.so.6");
const socketFn = libc.func("int socket(int domain, int type, int protocol)") as (
  domain: number,
  type: number,
  protocol: number,
) => number;
const sendFn = libc.func("long send(int fd, const void *buf, size_t len, int flags)");
const recvFn = libc.func("long recv(int fd, void *buf, size_t len, int flags)");

const AF_NETLINK = 16;
const SOCK_RAW = 3;
const SOCK_CLOEXEC = 0x80000;
const NETLINK_ROUTE = 0;
const MSG_DONTWAIT = 0x40;
const EAGAIN = 11;
const EIO = 5;
const REPLY_BUFFER = 16 * 1024;
/** above the kernel's largest dump batch (32 KiB) */
const DUMP_BUFFER = 64 * 1024;

const errnoNames = new Map<number, string>(
  Object.entries(constants.errno).map(([name, code]) => [code, name] as [number, string]),
);

export class NetlinkError extends Error {
  constructor(
    readonly request: string,
    /** positive errno */
    readonly errno: number,
    options?: ErrorOptions,
  ) {
    super(`netlink ${request}: ${errnoNames.get(errno) ?? `errno ${errno}`}`, options);
    this.name = "NetlinkError";
  }

  get code(): string | undefined {
    return errnoNames.get(this.errno);
  }
}

function call(fn: { async: (...args: unknown[]) => void }, ...args: unknown[]): Promise<number> {
  return new Promise((resolve, reject) => {
    fn.async(...args, (error: unknown, result: number) => (error ? reject(error) : resolve(Number(result))));
  });
}

let nextSeq = Math.floor(Math.random() * 0x7fffffff);

export class RtnetlinkSocket {
  private constructor(private readonly fd: number) {}

  /** In the calling thread's (the agent's) network namespace, or in netnsPath's. */
  static open(netnsPath?: string): RtnetlinkSocket {
    const create = () => {
      const fd = socketFn(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
      if (fd < 0) throw new NetlinkError("socket(AF_NETLINK)", koffi.errno());
      return new RtnetlinkSocket(fd);
    };
    return netnsPath ? inNetworkNamespace(netnsPath, create) : create();
  }

  /** Sends the request and waits for its acknowledgement; a negative one throws NetlinkError. */
  async request(request: RtRequest): Promise<void> {
    nextSeq = (nextSeq + 1) >>> 0;
    const seq = nextSeq;
    const bytes = request.encode(seq);
    const sent = await call(sendFn, this.fd, bytes, bytes.length, 0);
    // errno belongs to the worker thread that made the call: not readable here, hence EIO
    if (sent !== bytes.length) throw new NetlinkError(`${request.what} (send)`, EIO);
    const reply = Buffer.alloc(REPLY_BUFFER);
    for (;;) {
      const received = await this.receive(reply, request.what);
      const ack = ackFor(reply.subarray(0, received), seq);
      if (ack === undefined) continue; // not ours (cannot happen on a per-operation socket)
      if (ack !== 0) throw new NetlinkError(request.what, -ack);
      return;
    }
  }

  /** Sends a dump request; returns the bodies of the objects it listed, up to NLMSG_DONE. */
  async dump(what: string, encode: (seq: number) => Buffer): Promise<Buffer[]> {
    nextSeq = (nextSeq + 1) >>> 0;
    const seq = nextSeq;
    const bytes = encode(seq);
    const sent = await call(sendFn, this.fd, bytes, bytes.length, 0);
    if (sent !== bytes.length) throw new NetlinkError(`${what} (send)`, EIO);
    const bodies: Buffer[] = [];
    const reply = Buffer.alloc(DUMP_BUFFER);
    for (;;) {
      const received = await this.receive(reply, what);
      for (const m of splitMessages(reply.subarray(0, received))) {
        if (m.seq !== seq) continue;
        const status = m.body.length >= 4 ? m.body.readInt32LE(0) : 0;
        if ((m.type === NLMSG_DONE || m.type === NLMSG_ERROR) && status < 0)
          throw new NetlinkError(what, -status);
        if (m.type === NLMSG_DONE) return bodies;
        if (m.type !== NLMSG_ERROR) bodies.push(Buffer.from(m.body)); // copied: the buffer is reused
      }
    }
  }

  /**
   * The next datagram: already queued (the kernel answers inside send, and makes a dump's next
   * batch inside the previous recv) or, not expected, waited for off the event loop.
   */
  private async receive(buffer: Buffer, what: string): Promise<number> {
    const received = recvFn(this.fd, buffer, buffer.length, MSG_DONTWAIT) as number;
    if (received >= 0) return received;
    const errno = koffi.errno();
    if (errno !== EAGAIN) throw new NetlinkError(`${what} (recv)`, errno);
    const waited = await call(recvFn, this.fd, buffer, buffer.length, 0);
    if (waited < 0) throw new NetlinkError(`${what} (recv)`, EIO);
    return waited;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Runs the requests in order on one socket (stops at the first failure, like `ip -batch`). */
export async function rtnetlinkBatch(requests: RtRequest[], netnsPath?: string): Promise<void> {
  const socket = RtnetlinkSocket.open(netnsPath);
  try {
    for (const request of requests) await socket.request(request);
  } finally {
    socket.close();
  }
}
