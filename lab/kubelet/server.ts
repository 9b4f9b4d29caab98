import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, readSync, statSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
import type { Logger } from "../../lib/log.js";
import type { PodWorker } from "./pod-worker.js";
import { inPodArgv } from "./sandbox.js";
import {
  CLOSE,
  chooseProtocol,
  ERROR,
  exitStatus,
  failureStatus,
  frame,
  parseExecQuery,
  parseResize,
  RESIZE,
  STDERR,
  STDIN,
  STDOUT,
  shellQuote,
  tailLines,
} from "./stream-protocol.js";

/**
 * The kubelet's HTTPS endpoint (mutual TLS: only clients with a certificate from the cluster CA):
 *   GET  /api/v1/namespaces/<ns>/pods/<pod>/log   (also /containerLogs/<ns>/<pod>/<container>)
 *        container, follow, tailLines, previous (timestamps and sinceSeconds are ignored)
 *   GET  /api/v1/namespaces/<ns>/pods/<pod>/exec  (also /exec/<ns>/<pod>/<container>), WebSocket
 *        upgrade with v5/v4.channel.k8s.io; command (repeated), container, stdin, stdout, stderr, tty
 *   GET  /healthz
 * The lab API server forwards kubectl's log/exec requests here with the same path and query.
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

interface Target {
  namespace: string;
  pod: string;
  container?: string;
  verb: "log" | "exec";
}

export function parseTarget(pathname: string): Target | undefined {
  const api = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(log|exec)$/.exec(pathname);
  if (api)
    return {
      namespace: decodeURIComponent(api[1]),
      pod: decodeURIComponent(api[2]),
      verb: api[3] as "log" | "exec",
    };
  const kubelet = /^\/(containerLogs|exec)\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(pathname);
  if (kubelet) {
    return {
      namespace: decodeURIComponent(kubelet[2]),
      pod: decodeURIComponent(kubelet[3]),
      container: decodeURIComponent(kubelet[4]),
      verb: kubelet[1] === "exec" ? "exec" : "log",
    };
  }
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
    return names.includes(requested)
      ? { name: requested }
      : { error: `container ${requested} is not valid for pod ${worker.name}` };
  }
  if (names.length === 1) return { name: names[0] };
  return {
    error: `a container name must be specified for pod ${worker.name}, choose one of: [${names.join(" ")}]`,
  };
}

export class KubeletServer {
  private readonly server: Server;
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => chooseProtocol(protocols) ?? false,
  });
  private readonly execs = new Set<ChildProcess>();

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
    this.server.on("upgrade", (req, socket, head) => {
      const url = new URL(req.url ?? "/", "https://kubelet");
      const target = parseTarget(url.pathname);
      if (target?.verb !== "exec") {
        socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.exec(ws, target, url.searchParams));
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.options.port, this.options.address, () => resolve());
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const child of this.execs) child.kill("SIGKILL");
    for (const client of this.wss.clients) client.terminate();
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
    if (target.verb === "exec") {
      sendStatus(
        res,
        400,
        "BadRequest",
        "exec needs a WebSocket upgrade (v5.channel.k8s.io or v4.channel.k8s.io); SPDY is not supported by the lab kubelet",
      );
      return;
    }
    this.logs(target, url.searchParams, req, res);
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
    const tail = query.get("tailLines");
    const limitBytes = Number(query.get("limitBytes") ?? 0);
    let text = tail !== null ? tailLines(content.toString(), Number(tail)) : content.toString();
    if (limitBytes > 0) text = text.slice(0, limitBytes);
    res.writeHead(200, { "content-type": "text/plain", "transfer-encoding": "chunked" });
    res.write(text);
    if (query.get("follow") !== "true" || previous) {
      res.end();
      return;
    }
    // Follow: stream what is appended until the container stops or restarts, or the client leaves.
    let offset = content.length;
    const timer = setInterval(() => {
      let size = 0;
      try {
        size = statSync(file).size;
      } catch {
        size = offset;
      }
      if (size > offset) {
        const fd = openSync(file, "r");
        try {
          const chunk = Buffer.alloc(size - offset);
          readSync(fd, chunk, 0, chunk.length, offset);
          res.write(chunk);
        } finally {
          closeSync(fd);
        }
        offset = size;
        return;
      }
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

  private exec(ws: WebSocket, target: Target, query: URLSearchParams): void {
    const request = parseExecQuery(query);
    const fail = (message: string) => {
      ws.send(frame(ERROR, failureStatus(message)));
      ws.close(1000);
    };
    const worker = this.options.pods.findPod(target.namespace, target.pod);
    if (!worker) {
      fail(`pod ${target.namespace}/${target.pod} is not running on this node`);
      return;
    }
    const picked = pickContainer(worker, target.container ?? request.container);
    if (!picked.name) {
      fail(picked.error ?? "no container");
      return;
    }
    if (!worker.isContainerRunning(picked.name)) {
      fail(`unable to upgrade connection: container not found ("${picked.name}")`);
      return;
    }
    if (request.command.length === 0) {
      fail("you must specify at least one command for the container");
      return;
    }
    const env = { ...(worker.execEnv(picked.name) ?? {}), ...(request.tty ? { TERM: "xterm" } : {}) };
    const log = this.options.log.child({ pod: `${target.namespace}/${target.pod}`, exec: request.command });

    // The client announces the terminal size right away; wait briefly for it so the pty starts right.
    let size: { width: number; height: number } | undefined;
    let child: ChildProcess | undefined;
    const pending: Buffer[] = [];
    let stdinClosed = false;
    const resizePty = () => {
      if (!child?.pid || !size) return;
      const tty = ptyOfChild(child.pid);
      if (tty)
        spawnSync("stty", ["-F", tty, "rows", String(size.height), "cols", String(size.width)], {
          stdio: "ignore",
        });
    };
    ws.on("message", (data: Buffer) => {
      if (data.length === 0) return;
      const channel = data[0];
      const payload = data.subarray(1);
      if (channel === STDIN) {
        if (child?.stdin) child.stdin.write(payload);
        else pending.push(payload);
      } else if (channel === RESIZE) {
        size = parseResize(payload) ?? size;
        if (child) resizePty();
        else if (request.tty) start();
      } else if (channel === CLOSE && payload[0] === STDIN) {
        stdinClosed = true;
        child?.stdin?.end();
      }
    });
    ws.on("close", () => {
      if (child && child.exitCode === null) child.kill("SIGKILL");
    });

    const start = () => {
      if (child) return;
      const command = request.tty
        ? [
            "script",
            "-q",
            "-e",
            "-c",
            `${size ? `stty rows ${size.height} cols ${size.width} 2>/dev/null; ` : ""}exec ${shellQuote(request.command)}`,
            "/dev/null",
          ]
        : request.command;
      const argv = inPodArgv({ cgroupDir: worker.cgroupDir, netns: worker.netns, argv: command });
      const spawned = spawn(argv[0], argv.slice(1), {
        env: { ...env, SHELL: "/bin/sh" },
        stdio: [request.stdin || request.tty ? "pipe" : "ignore", "pipe", "pipe"],
        cwd: "/",
      });
      child = spawned;
      this.execs.add(spawned);
      log.debug({ pid: spawned.pid, tty: request.tty }, "exec started");
      spawned.stdin?.on("error", () => undefined);
      for (const chunk of pending) spawned.stdin?.write(chunk);
      pending.length = 0;
      if (stdinClosed || (!request.stdin && spawned.stdin)) {
        if (!request.tty) spawned.stdin?.end();
      }
      spawned.stdout?.on("data", (chunk: Buffer) => {
        if (request.stdout || request.tty) ws.send(frame(STDOUT, chunk));
      });
      spawned.stderr?.on("data", (chunk: Buffer) => {
        if (request.stderr) ws.send(frame(STDERR, chunk));
      });
      spawned.on("error", (error) => {
        this.execs.delete(spawned);
        fail(`could not run ${request.command[0]}: ${error.message}`);
      });
      spawned.on("close", (code, signal) => {
        this.execs.delete(spawned);
        const exitCode = code ?? (signal ? 128 + (signal === "SIGKILL" ? 9 : 15) : 1);
        log.debug({ exitCode }, "exec finished");
        if (ws.readyState === ws.OPEN) {
          ws.send(frame(ERROR, exitStatus(exitCode, request.command)));
          ws.close(1000);
        }
      });
    };

    // Tell the client the streams are up (upstream writes an empty frame on the first output channel).
    ws.send(frame(request.stdout ? STDOUT : request.stderr ? STDERR : ERROR));
    if (request.tty) setTimeout(start, 300);
    else start();
  }
}

/** The pty `script` created: the terminal of its child. */
function ptyOfChild(pid: number): string | undefined {
  try {
    // `script` runs inside nsenter/sh which exec; its child is the shell on the pty.
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    for (const child of children) {
      const tty = readlinkSync(`/proc/${child}/fd/0`);
      if (tty.startsWith("/dev/pts/")) return tty;
    }
  } catch (error) {
    // ENOENT: the process is gone or has no child yet (the caller retries); anything else is a bug
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  return undefined;
}
