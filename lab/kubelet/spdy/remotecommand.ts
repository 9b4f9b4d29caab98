import type { SpdySession, SpdyStream } from "./session.js";

/**
 * The remotecommand (exec/attach) stream setup over SPDY, as the kubelet serves it
 * (k8s.io/kubelet/pkg/cri/streaming/remotecommand/httpstream.go): the client opens one stream per
 * channel, named by the `streamType` header (error, stdin, stdout, stderr, resize); the server
 * waits until all it expects are there. Over SPDY the kubelet speaks v4 down to v1 (v5 exists only
 * on WebSockets, where stdin EOF needs a message; here it is the stream's FIN).
 */

export const SPDY_REMOTECOMMAND_PROTOCOLS = [
  "v4.channel.k8s.io",
  "v3.channel.k8s.io",
  "v2.channel.k8s.io",
  "channel.k8s.io",
];

/** How long the client has to open all its streams (the kubelet's streamCreationTimeout). */
export const STREAM_CREATION_TIMEOUT_MS = 30_000;

export interface RemoteCommandStreams {
  error?: SpdyStream;
  stdin?: SpdyStream;
  stdout?: SpdyStream;
  stderr?: SpdyStream;
  resize?: SpdyStream;
}

export interface StreamOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/** Resizing exists from v3 on. */
export function supportsResize(protocol: string): boolean {
  return protocol === "v4.channel.k8s.io" || protocol === "v3.channel.k8s.io";
}

/** Number of streams the client opens for these options (error always). */
export function expectedStreamCount(protocol: string, options: StreamOptions): number {
  return (
    1 +
    Number(options.stdin) +
    Number(options.stdout) +
    Number(options.stderr) +
    Number(options.tty && supportsResize(protocol))
  );
}

/**
 * Collects the client's streams (replying to each). Resolves with them once all expected ones are
 * open; rejects on timeout or when the connection ends first.
 */
export function waitForStreams(
  session: SpdySession,
  protocol: string,
  options: StreamOptions,
  timeoutMs = STREAM_CREATION_TIMEOUT_MS,
): Promise<RemoteCommandStreams> {
  const expected = expectedStreamCount(protocol, options);
  const streams: RemoteCommandStreams = {};
  let received = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out waiting for client to create streams (${received} of ${expected})`));
    }, timeoutMs);
    const onClose = () => {
      cleanup();
      reject(new Error(`connection closed after ${received} of ${expected} streams`));
    };
    const onStream = (stream: SpdyStream) => {
      const type = stream.header("streamType");
      if (
        type !== "error" &&
        type !== "stdin" &&
        type !== "stdout" &&
        type !== "stderr" &&
        type !== "resize"
      ) {
        stream.reset();
        return;
      }
      stream.reply();
      streams[type] = stream;
      received++;
      if (received === expected) {
        cleanup();
        resolve(streams);
      }
    };
    const cleanup = () => {
      clearTimeout(timer);
      session.off("stream", onStream);
      session.off("close", onClose);
    };
    session.on("stream", onStream);
    session.on("close", onClose);
  });
}

/**
 * The terminal sizes on a resize stream: JSON objects written one after another
 * ({"Width":w,"Height":h}, json.Encoder), split across data frames at any byte.
 */
export class ResizeDecoder {
  private pending = "";

  push(chunk: Buffer): { width: number; height: number }[] {
    this.pending += chunk.toString();
    const sizes: { width: number; height: number }[] = [];
    for (;;) {
      const start = this.pending.indexOf("{");
      const end = this.pending.indexOf("}", start);
      if (start < 0 || end < 0) break;
      const text = this.pending.slice(start, end + 1);
      this.pending = this.pending.slice(end + 1);
      try {
        const parsed = JSON.parse(text) as { Width?: unknown; Height?: unknown };
        if (typeof parsed.Width === "number" && typeof parsed.Height === "number")
          sizes.push({ width: parsed.Width, height: parsed.Height });
      } catch {
        // A malformed object is skipped, as the kubelet's decoder would stop on it; nothing to keep.
      }
    }
    return sizes;
  }
}
