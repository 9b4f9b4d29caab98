#!/usr/bin/env node
import { KubeConfig } from "@kubernetes/client-node";
import { Command } from "commander";
import { formatErrorChain } from "../../lib/error-chain.js";
import { createLogger } from "../../lib/log.js";
import { startControllerManager } from "./manager.js";
import { ipamConfig } from "./node-ipam.js";

/** The lab's controller manager: scheduler, node IPAM, EndpointSlices, Deployments, pod GC. */
const program = new Command()
  .name("lab-controllers")
  .requiredOption("--kubeconfig <file>", "kubeconfig with a client certificate for the lab API server")
  .requiredOption("--cluster-name <name>", "cluster name (for logs)")
  .requiredOption(
    "--pod-subnet <cidrs>",
    "cluster pod subnet(s), e.g. 10.244.0.0/16 or 10.244.0.0/16,fd00:10:244::/56",
  )
  .option("--node-cidr-mask-size <bits>", "IPv4 per-node pod CIDR prefix length", "24")
  .option("--node-cidr-mask-size-ipv6 <bits>", "IPv6 per-node pod CIDR prefix length", "64")
  .option("--log-level <level>", "pino log level", process.env.MESH_LOG_LEVEL ?? "info");

async function main(): Promise<void> {
  const opts = program.parse().opts();
  const log = createLogger({ name: `controllers/${opts.clusterName}`, level: opts.logLevel });
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(opts.kubeconfig);
  const manager = await startControllerManager({
    kubeConfig,
    clusterName: opts.clusterName,
    ipam: ipamConfig(opts.podSubnet, Number(opts.nodeCidrMaskSize), Number(opts.nodeCidrMaskSizeIpv6)),
    log,
  });
  const shutdown = (signal: string) => {
    log.info({ signal }, "stopping");
    manager.stop().finally(() => process.exit(0));
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
}

main().catch((error) => {
  console.error(`lab-controllers: ${formatErrorChain(error)}`);
  process.exit(1);
});
