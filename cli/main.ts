#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { ConfigError } from "../lab/config-error.js";
import { LabExistsError, PreflightError } from "../lab/up.js";
import { MeshUsageError } from "../lib/clustermesh/errors.js";
import { formatErrorChain } from "../lib/error-chain.js";
import { agentCommand } from "./commands/agent.js";
import { clustermeshCommand } from "./commands/clustermesh.js";
import { labCommand } from "./commands/lab.js";
import { UsageError } from "./output.js";

const program = new Command("meshctl")
  .description("clustermesh: multi-cluster networking for Kubernetes")
  .version("0.1.0")
  .showHelpAfterError()
  .exitOverride();

program.addCommand(labCommand());
program.addCommand(clustermeshCommand());
program.addCommand(agentCommand());

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exit(error.exitCode);
  }
  const expected =
    error instanceof ConfigError ||
    error instanceof UsageError ||
    error instanceof MeshUsageError ||
    error instanceof LabExistsError ||
    error instanceof PreflightError;
  // the causes too: a wrapped error ("cannot reach the cluster") is rarely enough to act on
  const message = formatErrorChain(error);
  process.stderr.write(`Error: ${message.split("\n").join("\nError: ")}\n`);
  if (!expected && error instanceof Error && process.env.MESH_DEBUG) process.stderr.write(`${error.stack}\n`);
  process.exit(expected ? 2 : 1);
}
