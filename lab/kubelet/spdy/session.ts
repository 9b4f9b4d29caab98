import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import {
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  type Frame,
  FrameReader,
  FrameWriter,
  RstStatus,
  type SpdyHeaders,
  SpdyProtocolError,
} from "./frames.js";

/**
 * The server side of a SPDY/3.1 connection as kube-apiserver (spdystream) drives it: the client
 * opens streams (odd ids) with SYN_STREAM, the server answers each with SYN_REPLY before any data
 * on it, both sides half-close with FIN and may reset with RST_STREAM. spdystream neither sends
 * nor honours WINDOW_UPDATE/SETTINGS (https://github.com/moby/spdystream/blob/v0.5.1/connection.go
 * handles SYN_STREAM, SYN_REPLY, DATA, RST_STREAM, HEADERS, PING, GOAWAY only), so there is no
 * flow-control window to keep; backpressure is the TCP socket's.
 */

/** Payload per data frame we send (spdystream reads any size up to 16 MiB; smaller keeps latency low). */
const DATA_CHUNK = 32 * 1024;

export interface SpdyStreamEvents {
  data: [Buffer];
  /** The peer half-closed (FIN): no more data will arrive. */
  end: [];
  /** The stream is gone: both sides closed, it was reset, or the connection ended. */
  close: [];
}

export class SpdyStream extends EventEmitter<SpdyStreamEvents> {
  private replied = false;
  private localEnded = false;
  private remoteEnded = false;
  private closed = false;

  constructor(
    readonly id: number,
    readonly headers: SpdyHeaders,
    private readonly session: SpdySession,
    flags: { remoteFin: boolean; unidirectional: boolean },
  ) {
    super();
    this.remoteEnded = flags.remoteFin;
    // A unidirectional stream carries nothing from us.
    this.localEnded = flags.unidirectional;
  }

  header(name: string): string | undefined {
    return this.headers[name.toLowerCase()]?.[0];
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get isRemoteEnded(): boolean {
    return this.remoteEnded;
  }

  /** SYN_REPLY: the stream is accepted (spdystream drops data on a stream before its reply). */
  reply(headers: SpdyHeaders = {}): void {
    if (this.replied || this.closed) return;
    this.replied = true;
    this.session.send(this.session.writer.synReply(this.id, headers));
  }

  /** Sends data; returns false when the socket buffer is full (wait for the session's "drain"). */
  write(data: Buffer | string): boolean {
    if (this.localEnded || this.closed) return true;
    this.reply();
    const bytes = typeof data === "string" ? Buffer.from(data) : data;
    let ok = true;
    for (let offset = 0; offset < bytes.length; offset += DATA_CHUNK)
      ok = this.session.send(this.session.writer.data(this.id, bytes.subarray(offset, offset + DATA_CHUNK)));
    return ok;
  }

  /** Half-closes our side (DATA with FIN). */
  end(data?: Buffer | string): void {
    if (this.localEnded || this.closed) return;
    if (data?.length) this.write(data);
    this.reply();
    this.localEnded = true;
    this.session.send(this.session.writer.data(this.id, Buffer.alloc(0), FLAG_FIN));
    if (this.remoteEnded) this.finish();
  }

  /** RST_STREAM: abandons the stream in both directions. */
  reset(status: number = RstStatus.Cancel): void {
    if (this.closed) return;
    this.session.send(this.session.writer.rstStream(this.id, status));
    this.finish();
  }

  /** @internal frames from the peer */
  receive(frame: Frame): void {
    if (this.closed) return;
    if (frame.type === "data") {
      if (frame.data.length > 0) this.emit("data", frame.data);
      if (frame.flags & FLAG_FIN) this.remoteEnd();
    } else if (frame.type === "headers") {
      if (frame.flags & FLAG_FIN) this.remoteEnd();
    } else if (frame.type === "rst_stream") {
      this.remoteEnded = true;
      this.localEnded = true;
      this.emit("end");
      this.finish();
    }
  }

  private remoteEnd(): void {
    if (this.remoteEnded) return;
    this.remoteEnded = true;
    this.emit("end");
    if (this.localEnded) this.finish();
  }

  /** @internal the stream is over, for whatever reason */
  finish(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.remoteEnded) {
      this.remoteEnded = true;
      this.emit("end");
    }
    this.session.forget(this.id);
    this.emit("close");
  }
}

export interface SpdySessionEvents {
  stream: [SpdyStream];
  /** Socket buffer drained after a write returned false. */
  drain: [];
  close: [Error | undefined];
}

export class SpdySession extends EventEmitter<SpdySessionEvents> {
  /** @internal */
  readonly writer = new FrameWriter();
  private readonly reader = new FrameReader();
  private readonly streams = new Map<number, SpdyStream>();
  private lastStreamId = 0;
  private goneAway = false;
  private closed = false;
  private reading: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: Duplex,
    head?: Buffer,
  ) {
    super();
    socket.on("data", (chunk: Buffer) => this.onBytes(chunk));
    socket.on("drain", () => this.emit("drain"));
    socket.on("error", (error) => this.shutdown(error));
    // The peer's last frames are handled before the streams are told the connection ended.
    socket.on("close", () => void this.reading.then(() => this.shutdown(undefined)));
    socket.on("end", () => void this.reading.then(() => this.shutdown(undefined)));
    if (head?.length) queueMicrotask(() => this.onBytes(head));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** @internal */
  send(frame: Buffer): boolean {
    if (this.closed || this.socket.destroyed) return true;
    return this.socket.write(frame);
  }

  /** @internal */
  forget(id: number): void {
    this.streams.delete(id);
    if (this.goneAway && this.streams.size === 0) this.close();
  }

  /** GOAWAY, then the TCP connection ends once the bytes are out (spdystream does the same on Close). */
  close(): void {
    if (this.closed) return;
    this.send(this.writer.goAway(this.lastStreamId));
    this.closed = true;
    this.socket.end();
    this.cleanup(undefined);
  }

  /** Drops the connection without ceremony. */
  destroy(error?: Error): void {
    this.socket.destroy();
    this.shutdown(error);
  }

  private shutdown(error: Error | undefined): void {
    if (this.closed) {
      this.cleanup(error);
      return;
    }
    this.closed = true;
    this.cleanup(error);
  }

  private cleaned = false;
  private cleanup(error: Error | undefined): void {
    if (this.cleaned) return;
    this.cleaned = true;
    for (const stream of [...this.streams.values()]) stream.finish();
    this.writer.close();
    this.reader.close();
    this.emit("close", error);
  }

  private onBytes(chunk: Buffer): void {
    if (this.cleaned) return;
    // Frames are handled strictly in arrival order; header blocks decompress asynchronously.
    this.reading = this.reading.then(async () => {
      if (this.cleaned) return;
      let frames: Frame[];
      try {
        frames = await this.reader.push(chunk);
      } catch (error) {
        // A broken header context cannot be recovered: the connection is over (GOAWAY protocol error).
        this.send(this.writer.goAway(this.lastStreamId, 1));
        this.destroy(
          error instanceof Error ? error : new SpdyProtocolError(String(error), 0, { cause: error }),
        );
        return;
      }
      for (const frame of frames) if (!this.cleaned) this.onFrame(frame);
    });
  }

  private onFrame(frame: Frame): void {
    switch (frame.type) {
      case "syn_stream": {
        // Client streams are odd and increasing; anything else is refused (spdystream's validateStreamId).
        if (this.goneAway || frame.streamId % 2 === 0 || frame.streamId <= this.lastStreamId) {
          this.send(this.writer.rstStream(frame.streamId, RstStatus.ProtocolError));
          return;
        }
        this.lastStreamId = frame.streamId;
        const stream = new SpdyStream(frame.streamId, frame.headers, this, {
          remoteFin: (frame.flags & FLAG_FIN) !== 0,
          unidirectional: (frame.flags & FLAG_UNIDIRECTIONAL) !== 0,
        });
        this.streams.set(frame.streamId, stream);
        this.emit("stream", stream);
        return;
      }
      case "data":
      case "headers":
      case "rst_stream":
        this.streams.get(frame.streamId)?.receive(frame);
        return;
      case "ping":
        // Pings from the client have odd ids and are echoed; ours (even) would be answers.
        if (frame.id % 2 === 1) this.send(this.writer.ping(frame.id));
        return;
      case "goaway":
        this.goneAway = true;
        if (this.streams.size === 0) this.close();
        return;
      default:
        // SYN_REPLY (we open no streams), SETTINGS, WINDOW_UPDATE: nothing to do, as in spdystream.
        return;
    }
  }
}
