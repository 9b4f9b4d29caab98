/**
 * The agent's unix-socket HTTP API: the CNI plugin's POST /v1/cni/{add,del,check,status,gc}
 * (200 + CniResult, or a CNI error body with a non-200 status) and GET /v1/status, /healthz.
 */
import { chmodSync, existsSync, mkdirSync, unlinkSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { dirname } from "node:path";
import {
  type AgentCniRequest,
  CNI_VERSION,
  CniError,
  CniErrorCode,
  type CniResult,
} from "../../lib/api/cni-protocol.js";
import type { Logger } from "../../lib/log.js";

export interface CniHandlers {
  add(request: AgentCniRequest): Promise<CniResult>;
  del(request: AgentCniRequest): Promise<void>;
  check(request: AgentCniRequest): Promise<void>;
  /** Throws a CniError when the agent cannot serve ADDs. */
  status(): void;
  gc(request: AgentCniRequest): Promise<void>;
}

export interface AgentApiServerOptions {
  socketPath: string;
  cni: CniHandlers;
  status: () => unknown;
  log: Logger;
  /** Per CNI command and result ("ok" or the error code). */
  onCniRequest?: (command: string, result: string, seconds: number) => void;
}

const MAX_BODY = 1024 * 1024;

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new CniError(CniErrorCode.DecodeFailure, "request body too large"));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function httpStatusFor(error: CniError): number {
  if (error.code === CniErrorCode.TryAgainLater || error.code === CniErrorCode.PluginNotAvailable) return 503;
  if (error.code >= 100 || error.code === CniErrorCode.IoFailure) return 500;
  return 400;
}

export function parseCniRequest(text: string, command: string): AgentCniRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new CniError(
      CniErrorCode.DecodeFailure,
      `request is not JSON: ${(error as Error).message}`,
      undefined,
      {
        cause: error,
      },
    );
  }
  if (typeof parsed !== "object" || parsed === null)
    throw new CniError(CniErrorCode.DecodeFailure, "request is not an object");
  const request = parsed as Partial<AgentCniRequest>;
  if (typeof request.config !== "object" || request.config === null) {
    throw new CniError(CniErrorCode.InvalidNetworkConfig, "request has no network config");
  }
  if (request.args !== undefined && (typeof request.args !== "object" || request.args === null)) {
    throw new CniError(CniErrorCode.DecodeFailure, "args must be an object");
  }
  return {
    command: command.toUpperCase() as AgentCniRequest["command"],
    containerId: typeof request.containerId === "string" ? request.containerId : "",
    netns: typeof request.netns === "string" ? request.netns : "",
    ifname: typeof request.ifname === "string" ? request.ifname : "",
    args: (request.args ?? {}) as Record<string, string>,
    config: request.config,
  };
}

export async function startApiServer(options: AgentApiServerOptions): Promise<Server> {
  const { log } = options;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://agent");
    if (req.method === "GET" && url.pathname === "/v1/status") return send(res, 200, options.status());
    if (req.method === "GET" && url.pathname === "/healthz") {
      try {
        options.cni.status();
        return send(res, 200, { ok: true });
      } catch (error) {
        return send(res, 503, { ok: false, reason: (error as Error).message });
      }
    }
    const match = /^\/v1\/cni\/(add|del|check|status|gc)$/.exec(url.pathname);
    if (req.method !== "POST" || !match)
      return send(res, 404, { error: `no route ${req.method} ${url.pathname}` });
    const command = match[1];
    const started = process.hrtime.bigint();
    let outcome = "ok";
    try {
      const request = parseCniRequest(await readBody(req), command);
      switch (command) {
        case "add":
          return send(res, 200, await options.cni.add(request));
        case "del":
          await options.cni.del(request);
          return send(res, 200, {});
        case "check":
          await options.cni.check(request);
          return send(res, 200, {});
        case "status":
          options.cni.status();
          return send(res, 200, {});
        default:
          await options.cni.gc(request);
          return send(res, 200, {});
      }
    } catch (error) {
      const cniError =
        error instanceof CniError
          ? error
          : new CniError(CniErrorCode.IoFailure, (error as Error).message ?? String(error), undefined, {
              cause: error,
            });
      outcome = String(cniError.code);
      if (command !== "status")
        log.warn({ command, code: cniError.code, err: cniError }, "CNI request failed");
      return send(res, httpStatusFor(cniError), cniError.toJSON(CNI_VERSION));
    } finally {
      options.onCniRequest?.(command, outcome, Number(process.hrtime.bigint() - started) / 1e9);
    }
  };

  mkdirSync(dirname(options.socketPath), { recursive: true });
  if (existsSync(options.socketPath)) unlinkSync(options.socketPath); // left by a previous run
  const server = createServer((req, res) => {
    handle(req, res).catch((error) => {
      log.error({ err: error }, "API request failed");
      if (!res.headersSent) send(res, 500, { error: String(error) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.socketPath, () => resolve());
  });
  chmodSync(options.socketPath, 0o600);
  return server;
}
