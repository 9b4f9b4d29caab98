import { join } from "node:path";
import { type AgentStatus, getAgentStatus } from "../lib/api/agent-status.js";
import { labDir } from "./state.js";

/** Where a lab node's agent listens (CNI and status API). */
export function agentSocketPath(lab: string, node: string): string {
  return join(labDir(lab), "nodes", node, "agent.sock");
}

/** The status document of a lab node's agent. */
export function agentStatus(lab: string, node: string): Promise<AgentStatus> {
  return getAgentStatus(agentSocketPath(lab, node));
}
