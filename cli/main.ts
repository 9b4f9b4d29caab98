#!/usr/bin/env node
import { Command, CommanderError } from "commander";
import { UsageError } from "../lib/usage-error.js";
import { agentCommand } from "./commands/agent.js";
import { clustermeshCommand } from "./commands/clustermesh.js";
import { labCommand } from "./commands/lab.js";

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
  const expected = error instanceof UsageError;
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`Error: ${message.split("\n").join("\nError: ")}\n`);
  if (!expected && error instanceof Error && process.env.MESH_DEBUG) process.stderr.write(`${error.stack}\n`);
  process.exit(expected ? 2 : 1);
}
