import type { ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import type { Logger } from "../../lib/log.js";
import { ExecSession } from "./exec-session.js";
import { lastLines, RecordTail, renderRecords } from "./log-format.js";
import type { PodWorker } from "./pod-worker.js";
import { PORT_FORWARD_PROTOCOLS, servePortForward } from "./port-forward.js";
import {
  type RemoteCommandStreams,
  ResizeDecoder,
  SPDY_REMOTECOMMAND_PROTOCOLS,
  waitForStreams,
} from "./spdy/remotecommand.js";
import type { SpdySession } from "./spdy/session.js";
import { isSpdyUpgrade, refuseUpgrade, upgradeToSpdy } from "./spdy/upgrade.js";
import {
  CLOSE,
  chooseProtocol,
  ERROR,
  type ExecRequest,
  exitStatus,
  failureStatus,
  frame,
  parseExecQuery,
  parseResize,
  RESIZE,
  STDERR,
  STDIN,
  STDOUT,
} from "./stream-protocol.js";

/**
 * The kubelet's HTTPS endpoint (mutual TLS: only clients with a certificate from --client-ca-file,
 * i.e. the API server's kubelet client certificate):
 *   GET /containerLogs/<ns>/<pod>/<container>  (also /api/v1/namespaces/<ns>/pods/<pod>/log)
 *       follow, tailLines, timestamps, previous, limitBytes, sinceSeconds, sinceTime
 *   /exec/<ns>/<pod>[/<uid>]/<container>       (also /api/v1/namespaces/<ns>/pods/<pod>/exec)
 *       SPDY/3.1 upgrade (v4…v1.channel.k8s.io: what kube-apiserver speaks to kubelets, also when
 *       kubectl uses WebSockets) or WebSocket (v5…v1.channel.k8s.io, what the lab API server
 *       forwards); command (repeated), input/output/error/tty=1 (or stdin/stdout/stderr=true)
 *   /attach/<ns>/<pod>[/<uid>]/<container>     SPDY or WebSocket: the container's output from now on
 *   /portForward/<ns>/<pod>[/<uid>]            SPDY (portforward.k8s.io)
 *   GET /healthz
 */

export interface PodLookup {
  findPod(namespace: string, name: string): PodWorker | undefined;
}

export interface KubeletServerOptions {
  tls: { cert: string; key: string; ca: string };
  address: string;
  port: number;
  pods: PodLookup;
  log: Logger;
}

export interface Target {
  namespace: string;
  pod: string;
  uid?: string;
  container?: string;
  verb: "log" | "exec" | "attach" | "portforward";
}

/** The kubelet paths (pkg/kubelet/server/server.go InstallDebuggingHandlers) and the pod subresources. */
export function parseTarget(pathname: string): Target | undefined {
  const segments = pathname.split("/").slice(1).map(decodeURIComponent);
  const api = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(log|exec|attach|portforward)$/.exec(pathname);
  if (api)
    return {
      namespace: decodeURIComponent(api[1]),
      pod: decodeURIComponent(api[2]),
      verb: api[3] as Target["verb"],
    };
  const [root, namespace, pod, ...rest] = segments;
  if (!namespace || !pod || rest.some((s) => !s)) return undefined;
  if (root === "containerLogs" && rest.length === 1)
    return { namespace, pod, container: rest[0], verb: "log" };
  if ((root === "exec" || root === "attach") && (rest.length === 1 || rest.length === 2))
    return {
      namespace,
      pod,
      ...(rest.length === 2 ? { uid: rest[0] } : {}),
      container: rest[rest.length - 1],
      verb: root,
    };
  if (root === "portForward" && rest.length <= 1)
    return { namespace, pod, ...(rest.length === 1 ? { uid: rest[0] } : {}), verb: "portforward" };
  return undefined;
}

function sendStatus(res: ServerResponse, code: number, reason: string, message: string): void {
  const body = JSON.stringify({
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message,
    reason,
    code,
  });
  res.writeHead(code, { "content-type": "application/json" });
  res.end(body);
}

/** Picks the container a request means: the named one, or the only one. */
function pickContainer(worker: PodWorker, requested: string | undefined): { name?: string; error?: string } {
  const names = worker.containerNames();
  if (requested) {
    return worker.hasContainer(requested)
      ? { name: requested }
      : { error: `container ${requested} is not valid for pod ${worker.name}` };
  }
  if (names.length === 1) return { name: names[0] };
  return {
    error: `a container name must be specified for pod ${worker.name}, choose one of: [${names.join(" ")}]`,
  };
}

/** The JSON the kubelet writes on the v4 error stream for an error (apierrors.NewInternalError). */
function internalError(message: string): string {
  return JSON.stringify({
    metadata: {},
    status: "Failure",
    message: `Internal error occurred: ${message}`,
    reason: "InternalError",
    details: { causes: [{ message }] },
    code: 500,
  });
}

export class KubeletServer {
  private readonly server: Server;
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => chooseProtocol(protocols) ?? false,
  });
  private readonly children = new Set<ChildProcess>();
  private readonly sessions = new Set<SpdySession>();

  constructor(private readonly options: KubeletServerOptions) {
    this.server = createServer(
      {
        cert: options.tls.cert,
        key: options.tls.key,
        ca: options.tls.ca,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => this.handle(req, res),
    );
    this.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.upgrade(req, socket, head),
    );
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.port, this.options.address, () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const child of this.children) child.kill("SIGKILL");
    for (const client of this.wss.clients) client.terminate();
    for (const session of this.sessions) session.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "https://kubelet");
    if (url.pathname === "/healthz") {
      res.end("ok");
      return;
    }
    const target = parseTarget(url.pathname);
    if (!target) {
      sendStatus(res, 404, "NotFound", `${url.pathname} is not served by the lab kubelet`);
      return;
    }
    if (target.verb !== "log") {
      sendStatus(
        res,
        400,
        "BadRequest",
        `${target.verb} needs a connection upgrade: SPDY/3.1 or WebSocket (v5.channel.k8s.io…)`,
      );
      return;
    }
    this.logs(target, url.searchParams, req, res);
  }

  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? "/", "https://kubelet");
    const target = parseTarget(url.pathname);
    if (!target || target.verb === "log") {
      refuseUpgrade(socket, 404, `${url.pathname} cannot be upgraded`);
      return;
    }
    const worker = this.options.pods.findPod(target.namespace, target.pod);
    const spdy = isSpdyUpgrade(req);
    if (spdy) {
      if (!worker || (target.uid && target.uid !== worker.uid)) {
        refuseUpgrade(socket, 404, `pod ${target.namespace}/${target.pod} is not running on this node`);
        return;
      }
      if (target.verb === "portforward") {
        const upgraded = upgradeToSpdy(req, socket, head, PORT_FORWARD_PROTOCOLS);
        if ("error" in upgraded) return;
        this.track(upgraded.session);
        servePortForward(
          upgraded.session,
          { podName: worker.name, podUid: worker.uid, netns: () => worker.netns },
          this.options.log.child({ pod: `${target.namespace}/${target.pod}`, portForward: true }),
          this.children,
        );
        return;
      }
      this.remoteCommandOverSpdy(req, socket, head, target, url.searchParams);
      return;
    }
    if (target.verb === "portforward") {
      refuseUpgrade(socket, 400, "port forwarding needs a SPDY/3.1 upgrade (portforward.k8s.io)");
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.execOverWebSocket(ws, target, url.searchParams));
  }

  private track(session: SpdySession): void {
    this.sessions.add(session);
    session.on("close", () => this.sessions.delete(session));
  }

  /**
   * What the request runs in: the container and, for exec, a command. Returns why it cannot run,
   * in the kubelet's words.
   */
  private resolve(
    target: Target,
    request: ExecRequest,
  ): { worker: PodWorker; container: string } | { error: string } {
    const worker = this.options.pods.findPod(target.namespace, target.pod);
    if (!worker) return { error: `pod ${target.namespace}/${target.pod} is not running on this node` };
    const picked = pickContainer(worker, target.container ?? request.container);
    if (!picked.name) return { error: picked.error ?? "no container" };
    if (!worker.isContainerRunning(picked.name))
      return { error: `unable to upgrade connection: container not found ("${picked.name}")` };
    if (target.verb === "exec" && request.command.length === 0)
      return { error: "you must specify at least one command for the container" };
    return { worker, container: picked.name };
  }

  private remoteCommandOverSpdy(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: Target,
    query: URLSearchParams,
  ): void {
    const request = parseExecQuery(query);
    if (!request.stdin && !request.stdout && !request.stderr) {
      refuseUpgrade(socket, 400, "you must specify at least 1 of stdin, stdout, stderr");
      return;
    }
    // The kubelet checks the container before upgrading (a 404/500 the API server passes on).
    const resolved = this.resolve(target, request);
    if ("error" in resolved) {
      refuseUpgrade(socket, 404, resolved.error);
      return;
    }
    const upgraded = upgradeToSpdy(req, socket, head, SPDY_REMOTECOMMAND_PROTOCOLS);
    if ("error" in upgraded) return;
    const { session, protocol } = upgraded;
    this.track(session);
    const log = this.options.log.child({
      pod: `${target.namespace}/${target.pod}`,
      [target.verb]: request.command,
      protocol,
    });
    waitForStreams(session, protocol, request).then(
      (streams) => this.runOverSpdy(session, protocol, streams, target, request, resolved, log),
      (error: Error) => {
        log.debug({ err: error.message }, "remotecommand streams not established");
        session.destroy();
      },
    );
  }

  private runOverSpdy(
    session: SpdySession,
    protocol: string,
    streams: RemoteCommandStreams,
    target: Target,
    request: ExecRequest,
    resolved: { worker: PodWorker; container: string },
    log: Logger,
  ): void {
    let done = false;
    const finish = (result: { exitCode: number } | { error: string }) => {
      if (done) return;
      done = true;
      // v4 reports every outcome as a Status; v1–v3 write only failures, as text.
      const status =
        "error" in result
          ? protocol === "v4.channel.k8s.io"
            ? internalError(result.error)
            : result.error
          : result.exitCode === 0
            ? protocol === "v4.channel.k8s.io"
              ? exitStatus(0, request.command)
              : ""
            : protocol === "v4.channel.k8s.io"
              ? exitStatus(result.exitCode, request.command)
              : `command terminated with non-zero exit code: exit code ${result.exitCode}`;
      if (status) streams.error?.write(status);
      for (const stream of [streams.stdout, streams.stderr, streams.error]) stream?.end();
      session.close();
    };
    if (target.verb === "attach") {
      this.attach(session, streams, resolved, finish);
      return;
    }
    const exec = new ExecSession(
      { ...resolved, request, log, registry: this.children },
      {
        stdout: (chunk) => streams.stdout?.write(chunk),
        stderr: (chunk) => streams.stderr?.write(chunk),
        finished: finish,
      },
    );
    streams.stdin?.on("data", (chunk) => exec.stdin(chunk));
    streams.stdin?.on("end", () => exec.closeStdin());
    const sizes = new ResizeDecoder();
    streams.resize?.on("data", (chunk) => {
      for (const size of sizes.push(chunk)) exec.resize(size);
    });
    session.on("close", () => {
      done = true;
      exec.abort();
    });
    exec.start();
  }

  /**
   * Attach: the container's output from now on, until it stops (the lab's containers have no stdin
   * to write to, so input is read and dropped).
   */
  private attach(
    session: SpdySession,
    streams: RemoteCommandStreams,
    resolved: { worker: PodWorker; container: string },
    finish: (result: { exitCode: number } | { error: string }) => void,
  ): void {
    const { worker, container } = resolved;
    const restarts = worker.restartCount(container) ?? 0;
    const file = worker.logFile(container, restarts);
    let offset = existsSync(file) ? statSync(file).size : 0;
    const tail = new RecordTail();
    streams.stdin?.on("data", () => undefined);
    const timer = setInterval(() => {
      offset = copyAppended(file, offset, (chunk) => {
        for (const record of tail.push(chunk.toString())) {
          const text = renderRecords([record], { timestamps: false });
          const out = record.stream === "stderr" ? (streams.stderr ?? streams.stdout) : streams.stdout;
          out?.write(text);
        }
      });
      if (
        worker.finished ||
        worker.restartCount(container) !== restarts ||
        !worker.isContainerRunning(container)
      ) {
        clearInterval(timer);
        finish({ exitCode: 0 });
      }
    }, 100);
    session.on("close", () => clearInterval(timer));
  }

  private logs(target: Target, query: URLSearchParams, req: IncomingMessage, res: ServerResponse): void {
    const worker = this.options.pods.findPod(target.namespace, target.pod);
    if (!worker) {
      sendStatus(res, 404, "NotFound", `pod ${target.namespace}/${target.pod} is not running on this node`);
      return;
    }
    const picked = pickContainer(worker, target.container ?? query.get("container") ?? undefined);
    if (!picked.name) {
      sendStatus(res, 400, "BadRequest", picked.error ?? "no container");
      return;
    }
    const container = picked.name;
    const restarts = worker.restartCount(container) ?? 0;
    const previous = query.get("previous") === "true";
    if (previous && restarts === 0) {
      sendStatus(
        res,
        400,
        "BadRequest",
        `previous terminated container "${container}" in pod "${target.pod}" not found`,
      );
      return;
    }
    const file = worker.logFile(container, previous ? restarts - 1 : restarts);
    const content = existsSync(file) ? readFileSync(file) : Buffer.alloc(0);
    const options = logOptions(query);
    const tail = new RecordTail();
    const state = { lineStart: true };
    const records = lastLines(tail.push(content.toString()), options.tailLines);
    let budget = options.limitBytes > 0 ? options.limitBytes : Number.POSITIVE_INFINITY;
    // limitBytes: the response ends once that many bytes were sent (the kubelet's LimitWriter).
    const send = (text: string): boolean => {
      const bytes = Buffer.from(text);
      if (bytes.length >= budget) {
        res.end(bytes.subarray(0, budget));
        budget = 0;
        return false;
      }
      budget -= bytes.length;
      res.write(bytes);
      return true;
    };
    res.writeHead(200, { "content-type": "text/plain", "transfer-encoding": "chunked" });
    if (!send(renderRecords(records, options, state))) return;
    if (!options.follow || previous) {
      res.end();
      return;
    }
    // Follow: stream what is appended until the container stops or restarts, or the client leaves.
    let offset = content.length;
    const timer = setInterval(() => {
      const before = offset;
      let open = true;
      offset = copyAppended(file, offset, (chunk) => {
        open = send(renderRecords(tail.push(chunk.toString()), options, state));
      });
      if (!open) {
        clearInterval(timer);
        return;
      }
      if (offset > before) return;
      if (
        worker.finished ||
        worker.restartCount(container) !== restarts ||
        !worker.isContainerRunning(container)
      ) {
        clearInterval(timer);
        res.end();
      }
    }, 100);
    req.on("close", () => clearInterval(timer));
  }

  private execOverWebSocket(ws: WebSocket, target: Target, query: URLSearchParams): void {
    const request = parseExecQuery(query);
    const fail = (message: string) => {
      ws.send(frame(ERROR, failureStatus(message)));
      ws.close(1000);
    };
    if (target.verb !== "exec") {
      fail(`${target.verb} over WebSocket is not served by the lab kubelet; use SPDY/3.1`);
      return;
    }
    const resolved = this.resolve(target, request);
    if ("error" in resolved) {
      fail(resolved.error);
      return;
    }
    const log = this.options.log.child({ pod: `${target.namespace}/${target.pod}`, exec: request.command });
    const exec = new ExecSession(
      { ...resolved, request, log, registry: this.children },
      {
        stdout: (chunk) => ws.send(frame(STDOUT, chunk)),
        stderr: (chunk) => ws.send(frame(STDERR, chunk)),
        finished: (result) => {
          if ("error" in result) {
            fail(result.error);
            return;
          }
          if (ws.readyState === ws.OPEN) {
            ws.send(frame(ERROR, exitStatus(result.exitCode, request.command)));
            ws.close(1000);
          }
        },
      },
    );
    ws.on("message", (data: Buffer) => {
      if (data.length === 0) return;
      const channel = data[0];
      const payload = data.subarray(1);
      if (channel === STDIN) exec.stdin(payload);
      else if (channel === RESIZE) {
        const size = parseResize(payload);
        if (size) exec.resize(size);
      } else if (channel === CLOSE && payload[0] === STDIN) exec.closeStdin();
    });
    ws.on("close", () => exec.abort());
    // Tell the client the streams are up (upstream writes an empty frame on the first output channel).
    ws.send(frame(request.stdout ? STDOUT : request.stderr ? STDERR : ERROR));
    exec.start();
  }
}

/** The log query (kubelet names: follow, tailLines, timestamps, sinceSeconds, sinceTime, limitBytes). */
export function logOptions(query: URLSearchParams): {
  follow: boolean;
  tailLines: number;
  timestamps: boolean;
  since?: Date;
  limitBytes: number;
} {
  const sinceSeconds = Number(query.get("sinceSeconds") ?? 0);
  const sinceTime = query.get("sinceTime");
  const tail = query.get("tailLines");
  return {
    follow: query.get("follow") === "true",
    tailLines: tail === null || tail === "" ? -1 : Number(tail),
    timestamps: query.get("timestamps") === "true",
    ...(sinceSeconds > 0
      ? { since: new Date(Date.now() - sinceSeconds * 1000) }
      : sinceTime
        ? { since: new Date(sinceTime) }
        : {}),
    limitBytes: Number(query.get("limitBytes") ?? 0),
  };
}

/** Copies what was appended to a file since `offset` and returns the new offset. */
function copyAppended(file: string, offset: number, write: (chunk: Buffer) => void): number {
  let size = 0;
  try {
    size = statSync(file).size;
  } catch {
    return offset;
  }
  if (size <= offset) return offset;
  const fd = openSync(file, "r");
  try {
    const chunk = Buffer.alloc(size - offset);
    readSync(fd, chunk, 0, chunk.length, offset);
    write(chunk);
  } finally {
    closeSync(fd);
  }
  return size;
}
