import { request } from "node:http";
import {
  type AgentCniRequest,
  CniError,
  type CniErrorBody,
  CniErrorCode,
  type CniResult,
} from "../lib/api/cni-protocol.js";

/** POSTs a CNI request to the agent's unix socket; the agent answers a CniResult or a CNI error body. */
export function callAgent(
  socketPath: string,
  body: AgentCniRequest,
  timeoutMs = 60_000,
): Promise<CniResult | null> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(
      {
        socketPath,
        method: "POST",
        path: `/v1/cni/${body.command.toLowerCase()}`,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : null;
          } catch {
            reject(
              new CniError(
                CniErrorCode.IoFailure,
                `agent at ${socketPath} sent a reply that is not JSON`,
                text.slice(0, 200),
              ),
            );
            return;
          }
          if (res.statusCode === 200) {
            resolve(parsed as CniResult | null);
          } else {
            const error = parsed as Partial<CniErrorBody> | null;
            reject(
              new CniError(
                error?.code ?? CniErrorCode.IoFailure,
                error?.msg ?? `agent answered HTTP ${res.statusCode}`,
                error?.details,
              ),
            );
          }
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (error: NodeJS.ErrnoException) => {
      const unavailable = error.code === "ENOENT" || error.code === "ECONNREFUSED";
      reject(
        new CniError(
          unavailable ? CniErrorCode.TryAgainLater : CniErrorCode.IoFailure,
          unavailable
            ? `the clustermesh agent is not running (no socket at ${socketPath})`
            : `agent at ${socketPath}: ${error.message}`,
          undefined,
          { cause: error },
        ),
      );
    });
    req.end(payload);
  });
}
