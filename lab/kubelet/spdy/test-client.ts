import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { connect } from "node:tls";
import { FLAG_FIN, type Frame, FrameReader, FrameWriter, type SpdyHeaders } from "./frames.js";

/**
 * A minimal SPDY/3.1 client for tests, doing what kube-apiserver's spdystream client does towards
 * a kubelet: upgrade, open streams (odd ids), wait for SYN_REPLY, send data and FIN.
 */

export interface ClientStream {
  id: number;
  /** Everything received so far. */
  received: Buffer[];
  replied: Promise<void>;
  /** Resolves at the peer's FIN (or RST, or connection end) with all data. */
  ended: Promise<Buffer>;
  reset: boolean;
}

export class SpdyTestClient extends EventEmitter {
  private readonly writer = new FrameWriter();
  private readonly reader = new FrameReader();
  private nextId = 1;
  private readonly streams = new Map<
    number,
    ClientStream & { resolveReply(): void; resolveEnd(): void; rejectReply(e: Error): void }
  >();
  private reading: Promise<void> = Promise.resolve();
  readonly goAway: Promise<void>;
  private resolveGoAway!: () => void;
  readonly pings: number[] = [];

  private constructor(
    private readonly socket: Duplex,
    readonly protocol: string,
    rest: Buffer,
  ) {
    super();
    this.goAway = new Promise((resolve) => {
      this.resolveGoAway = resolve;
    });
    socket.on("data", (chunk: Buffer) => this.feed(chunk));
    socket.on("close", () => {
      void this.reading.then(() => {
        for (const stream of this.streams.values()) stream.resolveEnd();
        this.resolveGoAway();
      });
    });
    if (rest.length) this.feed(rest);
  }

  /** Upgrades `path` on the kubelet; resolves with the client or rejects with the HTTP status line and body. */
  static async connect(options: {
    host: string;
    port: number;
    path: string;
    protocols: string[];
    tls: { ca: string; cert: string; key: string };
  }): Promise<SpdyTestClient> {
    const socket = connect({
      host: options.host,
      port: options.port,
      ca: options.tls.ca,
      cert: options.tls.cert,
      key: options.tls.key,
      servername: "localhost",
      checkServerIdentity: () => undefined,
    });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", () => resolve());
      socket.once("error", reject);
    });
    socket.write(
      [
        `POST ${options.path} HTTP/1.1`,
        `Host: ${options.host}:${options.port}`,
        "Connection: Upgrade",
        "Upgrade: SPDY/3.1",
        ...options.protocols.map((p) => `X-Stream-Protocol-Version: ${p}`),
        "Content-Length: 0",
        "",
        "",
      ].join("\r\n"),
    );
    let buffered = Buffer.alloc(0);
    const head = await new Promise<{ head: string; rest: Buffer }>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        const end = buffered.indexOf("\r\n\r\n");
        if (end < 0) return;
        socket.off("data", onData);
        resolve({ head: buffered.subarray(0, end).toString(), rest: buffered.subarray(end + 4) });
      };
      socket.on("data", onData);
      socket.once("error", reject);
      socket.once("end", () => reject(new Error(`connection ended: ${buffered.toString()}`)));
    });
    const [status, ...headerLines] = head.head.split("\r\n");
    if (!status.includes(" 101 ")) {
      socket.destroy();
      throw new Error(`upgrade refused: ${status}: ${head.rest.toString().trim()}`);
    }
    const protocol =
      headerLines
        .find((l) => l.toLowerCase().startsWith("x-stream-protocol-version:"))
        ?.split(":")[1]
        ?.trim() ?? "";
    socket.pause();
    const client = new SpdyTestClient(socket, protocol, head.rest);
    socket.resume();
    return client;
  }

  openStream(headers: SpdyHeaders, fin = false): ClientStream {
    const id = this.nextId;
    this.nextId += 2;
    let resolveReply!: () => void;
    let rejectReply!: (e: Error) => void;
    let resolveEnd!: () => void;
    const replied = new Promise<void>((resolve, reject) => {
      resolveReply = resolve;
      rejectReply = reject;
    });
    // a reply that never comes rejects `replied`; callers that await it see the error
    replied.catch(() => undefined);
    const received: Buffer[] = [];
    const ended = new Promise<Buffer>((resolve) => {
      resolveEnd = () => resolve(Buffer.concat(received));
    });
    const stream = { id, received, replied, ended, reset: false, resolveReply, rejectReply, resolveEnd };
    this.streams.set(id, stream);
    this.socket.write(this.writer.synStream(id, headers, fin ? FLAG_FIN : 0));
    return stream;
  }

  write(stream: ClientStream, data: Buffer | string, fin = false): void {
    this.socket.write(this.writer.data(stream.id, Buffer.from(data), fin ? FLAG_FIN : 0));
  }

  end(stream: ClientStream): void {
    this.socket.write(this.writer.data(stream.id, Buffer.alloc(0), FLAG_FIN));
  }

  ping(id: number): void {
    this.socket.write(this.writer.ping(id));
  }

  close(): void {
    this.socket.destroy();
  }

  private feed(chunk: Buffer): void {
    this.reading = this.reading.then(async () => {
      for (const frame of await this.reader.push(chunk)) this.onFrame(frame);
    });
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case "syn_reply":
        this.streams.get(frame.streamId)?.resolveReply();
        return;
      case "data": {
        const stream = this.streams.get(frame.streamId);
        if (!stream) return;
        if (frame.data.length) stream.received.push(frame.data);
        if (frame.flags & FLAG_FIN) stream.resolveEnd();
        return;
      }
      case "rst_stream": {
        const stream = this.streams.get(frame.streamId);
        if (!stream) return;
        stream.reset = true;
        stream.rejectReply(new Error(`stream ${frame.streamId} reset (status ${frame.status})`));
        stream.resolveEnd();
        return;
      }
      case "ping":
        this.pings.push(frame.id);
        return;
      case "goaway":
        this.resolveGoAway();
        return;
      default:
        return;
    }
  }
}
