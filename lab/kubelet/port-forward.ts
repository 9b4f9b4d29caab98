import { type ChildProcess, spawn } from "node:child_process";
import type { Logger } from "../../lib/log.js";
import { RstStatus } from "./spdy/frames.js";
import type { SpdySession, SpdyStream } from "./spdy/session.js";

/**
 * Port forwarding over SPDY as the kubelet serves it
 * (k8s.io/kubelet/pkg/cri/streaming/portforward/httpstream.go): per forwarded connection the client
 * opens an `error` and a `data` stream carrying the same `requestID` and `port` headers; once both
 * are there the kubelet connects to localhost:<port> inside the pod's network namespace and copies
 * bytes both ways. A failure is written as text on the error stream and both streams are reset.
 *
 * The connection inside the pod namespace is made by `nsenter --net=… socat` (a process cannot
 * have one socket in another namespace without entering it; containerd dials "localhost" there too).
 */

export const PORT_FORWARD_PROTOCOLS = ["portforward.k8s.io"];

export interface PortForwardTarget {
  podName: string;
  podUid: string;
  /** Named netns of the pod (under /run/netns), or undefined when the sandbox is not up. */
  netns(): string | undefined;
}

interface Pair {
  requestId: string;
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

/** Validates a new stream the way httpStreamReceived does; returns why it is refused, if it is. */
export function portForwardStreamProblem(stream: {
  header(name: string): string | undefined;
}): string | undefined {
  const port = stream.header("port");
  if (!port) return `"port" header is required`;
  const parsed = Number(port);
  if (!/^\d+$/.test(port) || parsed > 65535) return `unable to parse "${port}" as a port`;
  if (parsed < 1) return `port "${port}" must be > 0`;
  const type = stream.header("streamType");
  if (!type) return `"streamType" header is required`;
  if (type !== "error" && type !== "data") return `invalid stream type "${type}"`;
  return undefined;
}

/** The pair a stream belongs to: its requestID, or (old clients) derived from the stream id. */
export function requestIdOf(stream: { id: number; header(name: string): string | undefined }): string {
  const id = stream.header("requestID");
  if (id) return id;
  return String(stream.header("streamType") === "data" ? stream.id - 2 : stream.id);
}

export function servePortForward(
  session: SpdySession,
  target: PortForwardTarget,
  log: Logger,
  registry: Set<ChildProcess>,
  streamCreationTimeoutMs = 30_000,
): void {
  const pairs = new Map<string, Pair>();
  const children = new Set<ChildProcess>();
  session.on("close", () => {
    for (const pair of pairs.values()) clearTimeout(pair.timer);
    for (const child of children) child.kill("SIGKILL");
  });
  session.on("stream", (stream) => {
    const problem = portForwardStreamProblem(stream);
    if (problem) {
      log.debug({ problem }, "port-forward stream refused");
      stream.reset(RstStatus.RefusedStream);
      return;
    }
    stream.reply();
    const requestId = requestIdOf(stream);
    let pair = pairs.get(requestId);
    if (!pair) {
      const created: Pair = {
        requestId,
        timer: setTimeout(() => {
          pairs.delete(requestId);
          created.error?.end(`(request=${requestId}) timed out waiting for streams`);
          created.data?.reset();
        }, streamCreationTimeoutMs),
      };
      pair = created;
      pairs.set(requestId, pair);
    }
    const type = stream.header("streamType") as "data" | "error";
    if (pair[type]) {
      pair.error?.write(`error processing stream for request ${requestId}: ${type} stream already assigned`);
      stream.reset();
      return;
    }
    pair[type] = stream;
    if (pair.data && pair.error) {
      clearTimeout(pair.timer);
      pairs.delete(requestId);
      forward(pair.data, pair.error, target, log, (child) => {
        children.add(child);
        registry.add(child);
        child.on("close", () => {
          children.delete(child);
          registry.delete(child);
        });
      });
    }
  });
}

function forward(
  data: SpdyStream,
  error: SpdyStream,
  target: PortForwardTarget,
  log: Logger,
  track: (child: ChildProcess) => void,
): void {
  const port = Number(data.header("port"));
  const fail = (message: string) => {
    const text = `error forwarding port ${port} to pod ${target.podName}, uid ${target.podUid}: ${message}`;
    log.debug({ port, err: message }, "port-forward failed");
    error.write(text);
    data.reset();
    error.reset();
  };
  const netns = target.netns();
  if (!netns) {
    fail("pod sandbox is not running");
    return;
  }
  // Half-closes travel both ways: stdin EOF shuts the socket's write side down; the pod's FIN
  // closes socat's stdout (shut-close; a pipe has no shutdown). -t: how long socat then waits for
  // the other direction before it quits.
  const child = spawn(
    "nsenter",
    [`--net=/run/netns/${netns}`, "--", "socat", "-t", "30", "STDIO,shut-close", `TCP4:127.0.0.1:${port}`],
    { stdio: ["pipe", "pipe", "pipe"] },
  );
  track(child);
  let stderr = "";
  let sent = 0;
  child.stdin.on("error", () => undefined); // EPIPE after socat quit: its exit status tells what happened
  child.stdout.on("data", (chunk: Buffer) => {
    sent += chunk.length;
    data.write(chunk);
  });
  // The pod's side closed: FIN at once. Without any byte it may be a failed connect, which the
  // exit status below tells.
  let podClosed = false;
  let clientClosed = false;
  // Both directions are over: the forward is done, whatever socat still waits for.
  const bothClosed = () => {
    if (!podClosed || !clientClosed) return;
    error.end();
    if (child.exitCode === null) child.kill("SIGTERM");
  };
  child.stdout.on("end", () => {
    if (sent === 0) return;
    podClosed = true;
    data.end();
    bothClosed();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  data.on("data", (chunk) => child.stdin.write(chunk));
  data.on("end", () => {
    clientClosed = true;
    child.stdin.end();
    bothClosed();
  });
  data.on("close", () => {
    if (child.exitCode === null) child.kill("SIGTERM");
  });
  child.on("error", (err) => fail(`cannot start socat in the pod namespace: ${err.message}`));
  child.on("close", (code, signal) => {
    if (code !== 0 && !signal && sent === 0) {
      const reason = /Connection refused/.test(stderr)
        ? `failed to connect to localhost:${port} inside namespace "${netns}": connection refused`
        : stderr.trim().split("\n").pop() || `socat exited with code ${code}`;
      fail(reason);
      return;
    }
    data.end();
    error.end();
  });
}
