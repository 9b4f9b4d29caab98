#!/usr/bin/env node
// The clustermesh CNI plugin: parses what the runtime passes (environment + stdin), forwards it to
// the node's agent, and prints the agent's result or a CNI error. It imports only node built-ins and
// the protocol contract (lib/api/cni-protocol.ts), so a call costs little more than node's own start-up.
import { readFileSync } from "node:fs";
import {
  CNI_VERSION,
  CniError,
  CniErrorCode,
  DEFAULT_AGENT_SOCKET,
  SUPPORTED_CNI_VERSIONS,
} from "../lib/api/cni-protocol.js";
import { callAgent } from "./agent-client.js";
import { buildAgentRequest, parseCommand, parseNetworkConfig } from "./request.js";

function readStdin(): string {
  try {
    return readFileSync(0, "utf8");
  } catch {
    return "";
  }
}

async function main(): Promise<number> {
  let cniVersion = CNI_VERSION;
  try {
    const command = parseCommand(process.env);
    if (command === "VERSION") {
      process.stdout.write(
        `${JSON.stringify({ cniVersion: CNI_VERSION, supportedVersions: SUPPORTED_CNI_VERSIONS })}\n`,
      );
      return 0;
    }
    const config = parseNetworkConfig(readStdin());
    cniVersion = config.cniVersion;
    const request = buildAgentRequest(command, process.env, config);
    const socket = config.agentSocket ?? DEFAULT_AGENT_SOCKET;
    let result: Awaited<ReturnType<typeof callAgent>>;
    try {
      result = await callAgent(socket, request);
    } catch (error) {
      // A DEL must not fail forever while the agent is down: the restarted agent removes endpoints
      // whose pods are gone when it resyncs, so the IP is released then.
      if (command === "DEL" && error instanceof CniError && error.code === CniErrorCode.TryAgainLater)
        return 0;
      throw error;
    }
    if (command === "ADD") {
      process.stdout.write(`${JSON.stringify({ ...result, cniVersion })}\n`);
    }
    return 0;
  } catch (error) {
    const cniError =
      error instanceof CniError
        ? error
        : new CniError(CniErrorCode.IoFailure, (error as Error).message ?? String(error));
    process.stdout.write(`${JSON.stringify(cniError.toJSON(cniVersion))}\n`);
    return 1;
  }
}

process.exitCode = await main();
