import { request } from "node:http";
import { join } from "node:path";
import type { AgentStatus } from "../agent/status/status.js";
import { labDir } from "./state.js";

export function agentSocketPath(lab: string, node: string): string {
  return join(labDir(lab), "nodes", node, "agent.sock");
}

/** GET /v1/status from a lab node's agent, over its unix socket. */
export function agentStatus(lab: string, node: string): Promise<AgentStatus> {
  const socketPath = agentSocketPath(lab, node);
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: "/v1/status", timeout: 5_000 }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        body += chunk;
      });
      res.on("end", () => {
        try {
          resolve(JSON.parse(body) as AgentStatus);
        } catch (error) {
          reject(error);
        }
      });
    });
    req.on("timeout", () => req.destroy(new Error("agent status timed out")));
    req.on("error", reject);
    req.end();
  });
}
