#!/usr/bin/env node
// The clustermesh agent: one per node, started inside the node's network namespace (nsenter --net,
// so /sys/fs/bpf and cgroup2 stay visible). Flags: see config.ts (USAGE).
import { createLogger } from "../lib/log.js";
import { Agent } from "./agent.js";
import { ConfigError, parseAgentFlags, USAGE } from "./config.js";

let config: ReturnType<typeof parseAgentFlags>;
try {
  config = parseAgentFlags(process.argv.slice(2));
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`clustermesh-agent: ${error.message}\n${USAGE}\n`);
    process.exit(2);
  }
  throw error;
}

const log = createLogger({ name: "agent", level: config.logLevel }).child({ node: config.nodeName });
const agent = new Agent(config, log);
let stopping = false;
const shutdown = (signal: string) => {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, "stopping (pinned datapath stays in place)");
  agent
    .stop()
    .catch((error) => log.error({ err: error }, "stop failed"))
    .finally(() => process.exit(0));
};
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));

try {
  await agent.start();
} catch (error) {
  log.fatal({ err: error }, "agent failed to start");
  await agent
    .stop()
    .catch((stopError) => log.error({ err: stopError }, "cleanup after the failed start failed"));
  process.exit(1);
}
