#!/usr/bin/env node
/**
 * meshctl's entry point. It loads only commander and the command definitions: each command's action
 * `await import()`s its implementation (client-node, etcd3, gRPC, node-forge, the lab), so `--help`,
 * `version` and a bad flag cost about what bare Node costs (bench/cli.ts).
 */
import { Command, CommanderError } from "commander";
import { formatErrorChain } from "../lib/error-chain.js";
import { UsageError } from "../lib/usage-error.js";
import { packageVersion } from "../lib/version.js";
import { agentCommand } from "./commands/agent.js";
import { clustermeshCommand } from "./commands/clustermesh.js";
import { installCommands } from "./commands/install.js";
import { labCommand } from "./commands/lab.js";
import { observeCommand } from "./commands/observe.js";
import { policyCommand } from "./commands/policy.js";
import { versionCommand } from "./commands/version.js";

const program = new Command("meshctl")
  .description("clustermesh: multi-cluster networking for Kubernetes")
  .version(packageVersion(), "-V, --version", "the client version (meshctl version: also the git commit)")
  .showHelpAfterError()
  .exitOverride();

program.addCommand(labCommand());
program.addCommand(clustermeshCommand());
for (const command of installCommands()) program.addCommand(command);
program.addCommand(agentCommand());
program.addCommand(observeCommand());
program.addCommand(policyCommand());
program.addCommand(versionCommand());

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exit(error.exitCode);
  }
  const expected = error instanceof UsageError;
  // the causes too: a wrapped error ("cannot reach the cluster") is rarely enough to act on
  const message = formatErrorChain(error);
  process.stderr.write(`Error: ${message.split("\n").join("\nError: ")}\n`);
  if (!expected && error instanceof Error && process.env.MESH_DEBUG) process.stderr.write(`${error.stack}\n`);
  process.exit(expected ? 2 : 1);
}
