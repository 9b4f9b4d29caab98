import { request } from "node:http";
import { join } from "node:path";
import type { AgentStatus } from "../agent/status/status.js";
import { labDir } from "./state.js";

/** Where a lab node's agent listens (CNI and status API). */
export function agentSocketPath(lab: string, node: string): string {
  return join(labDir(lab), "nodes", node, "agent.sock");
}

/** GET /v1/status from an agent's unix socket. */
export function getAgentStatus(socketPath: string, timeoutMs = 5_000): Promise<AgentStatus> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: "/v1/status", method: "GET", timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode !== 200)
          return reject(new Error(`agent answered HTTP ${res.statusCode}: ${text.slice(0, 200)}`));
        try {
          resolve(JSON.parse(text) as AgentStatus);
        } catch {
          reject(new Error("agent sent a status that is not JSON"));
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", (error: NodeJS.ErrnoException) =>
      reject(
        error.code === "ENOENT" || error.code === "ECONNREFUSED"
          ? new Error(`the agent is not running (nothing listens on ${socketPath})`)
          : error,
      ),
    );
    req.end();
  });
}

export function agentStatus(lab: string, node: string): Promise<AgentStatus> {
  return getAgentStatus(agentSocketPath(lab, node));
}
