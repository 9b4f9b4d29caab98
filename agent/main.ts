#!/usr/bin/env node
// The clustermesh agent: one per node, started inside the node's network namespace (nsenter --net,
// so /sys/fs/bpf and cgroup2 stay visible). Flags: see config.ts (USAGE).
//
// Exit codes: 2 bad flags; 1 the start-up failed; 0 stopped by SIGTERM/SIGINT (also during start-up:
// the start-up gives up, what it built is stopped, the pinned datapath stays in place).
import { createLogger } from "../lib/log.js";
import { versionLine } from "../lib/version.js";
import { Agent } from "./agent.js";
import { type AgentConfig, ConfigError, parseAgentFlags, USAGE } from "./config.js";

function configOrExit(argv: readonly string[]): AgentConfig {
  try {
    return parseAgentFlags(argv);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`clustermesh-agent: ${error.message}\n${USAGE}\n`);
    process.exit(2);
  }
}

if (process.argv.includes("--version")) {
  process.stdout.write(`${versionLine("clustermesh-agent")}\n`);
  process.exit(0);
}
const config = configOrExit(process.argv.slice(2));
const log = createLogger({ name: "agent", level: config.logLevel }).child({ node: config.nodeName });
const agent = new Agent(config, log);

let stopping: Promise<void> | undefined;
const stop = (signal: string) => {
  stopping ??= (async () => {
    log.info({ signal }, "stopping (pinned datapath stays in place)");
    const began = Date.now();
    await agent.stop().catch((error) => log.error({ err: error }, "stop failed"));
    log.info({ ms: Date.now() - began }, "stopped");
    process.exit(0);
  })();
};
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

try {
  await agent.start();
} catch (error) {
  // a start-up ended by a signal is not a failure: stop() exits
  if (!stopping) {
    log.fatal({ err: error }, "agent failed to start");
    await agent
      .stop()
      .catch((stopError) => log.error({ err: stopError }, "stop after a failed start failed"));
    process.exit(1);
  }
}
