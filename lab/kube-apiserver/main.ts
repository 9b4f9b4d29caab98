#!/usr/bin/env node
/** Process entry point: `node dist/lab/kube-apiserver/main.js --flag=value …` (see flags.ts). */
import { formatErrorChain } from "../../lib/error-chain.js";
import { createLogger } from "../../lib/log.js";
import { FlagError, optionsFromFlags, parseFlags, usage } from "./flags.js";
import { startKubeApiServer } from "./server.js";

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${usage()}\n`);
    return;
  }
  let options: ReturnType<typeof optionsFromFlags>;
  try {
    options = optionsFromFlags(parseFlags(argv));
  } catch (error) {
    if (!(error instanceof FlagError)) throw error;
    process.stderr.write(`kube-apiserver: ${error.message}\n`);
    process.exit(2);
  }
  const log = createLogger({
    name: `kube-apiserver/${options.clusterName}`,
    level: options.verbosity >= 4 ? "debug" : undefined,
  });
  const server = await startKubeApiServer({ ...options, log });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
}

main().catch((error) => {
  process.stderr.write(`kube-apiserver: ${formatErrorChain(error)}\n`);
  process.exit(1);
});
