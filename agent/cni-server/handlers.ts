/**
 * The CNI commands as the agent serves them: ADD, CHECK and GC only once the agent is ready; DEL
 * as soon as the endpoints of the previous run are restored (a pod's teardown need not wait for
 * the caches); none while stopping. STATUS succeeds exactly when ADDs are served.
 */
import { CniError } from "../../lib/api/cni-protocol.js";
import { AgentCniErrorCode, type EndpointManager } from "../endpoints/manager.js";
import type { CniHandlers } from "./server.js";

export type AgentPhase = "starting" | "ready" | "stopping";

export interface CniGate {
  phase: () => AgentPhase;
  /** undefined until the endpoint manager exists. */
  endpoints: () => EndpointManager | undefined;
}

/** Pure: may this command run now? (`restored`: the endpoint manager knows its pod CIDR.) */
export function cniServed(
  command: "add" | "del" | "check" | "gc",
  phase: AgentPhase,
  restored: boolean,
): boolean {
  if (phase === "stopping" || !restored) return false;
  return phase === "ready" || command === "del";
}

export function cniHandlers(gate: CniGate): CniHandlers {
  const endpointsFor = (command: "add" | "del" | "check" | "gc"): EndpointManager => {
    const endpoints = gate.endpoints();
    if (!endpoints || !cniServed(command, gate.phase(), endpoints.podCidr !== undefined))
      throw new CniError(AgentCniErrorCode.NotReady, "the clustermesh agent is starting; try again");
    return endpoints;
  };
  return {
    add: (request) => endpointsFor("add").add(request),
    del: (request) => endpointsFor("del").del(request),
    check: (request) => endpointsFor("check").check(request),
    status: () => {
      if (gate.phase() !== "ready")
        throw new CniError(AgentCniErrorCode.NotReady, "the clustermesh agent is starting");
    },
    gc: async (request) => {
      const valid = request.config["cni.dev/valid-attachments"];
      await endpointsFor("gc").gc(Array.isArray(valid) ? valid : []);
    },
  };
}
