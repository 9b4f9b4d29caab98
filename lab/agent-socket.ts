import { type AgentStatus, getAgentStatus } from "../lib/api/agent-status.js";
import { NodePaths } from "../lib/install/names.js";
import { nodeFile } from "./node-files.js";
import { labDir } from "./state.js";

/** Where a lab node's agent listens (CNI and status API): the DaemonSet's socket, under the node's root. */
export function agentSocketPath(lab: string, node: string): string {
  return nodeFile(labDir(lab), node, NodePaths.agentSocket);
}

/** The status document of a lab node's agent. */
export function agentStatus(lab: string, node: string): Promise<AgentStatus> {
  return getAgentStatus(agentSocketPath(lab, node));
}
