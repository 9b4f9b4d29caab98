/**
 * `meshctl version [--context C] [-o json]`: the client's version and git commit (lib/version.ts says
 * where the commit comes from) and, with --context, the versions the cluster's agent DaemonSet and
 * clustermesh-apiserver Deployment run (`servers`, loaded from ./version-servers.js only then).
 */
import { Command, Option } from "commander";
import { type ClientVersion, clientVersion } from "../../lib/version.js";
import { type OutputFormat, parseOutputFormat, printJson } from "../output.js";
import { kubeconfigFile } from "./clustermesh.js";
import type { ServerVersion } from "./version-servers.js";

export interface VersionReport {
  client: ClientVersion;
  servers?: ServerVersion[];
}

export function versionReport(): VersionReport {
  return { client: clientVersion() };
}

const SOURCE_TEXT: Record<ClientVersion["commitSource"], string> = {
  git: "read from the checkout's .git",
  "build-info": "stamped at build time",
  unknown: "no .git and no build stamp",
};

export function renderVersion(report: VersionReport): string {
  const { client } = report;
  return `meshctl ${client.version}, commit ${client.commit} (${SOURCE_TEXT[client.commitSource]})`;
}

export function versionCommand(): Command {
  return new Command("version")
    .description("meshctl's version and the git commit it was built from")
    .addOption(
      new Option("-o, --output <format>", "text or json").default("text").argParser(parseOutputFormat),
    )
    .option("--context <name>", "also show the versions installed in this cluster")
    .addOption(new Option("--kubeconfig <file>", "kubeconfig file of --context").argParser(kubeconfigFile))
    .action(async (options: { output: OutputFormat; context?: string; kubeconfig?: string }) => {
      const report: VersionReport = versionReport();
      const servers = options.context ? await import("./version-servers.js") : undefined;
      if (servers && options.context)
        report.servers = await servers.serverVersions(options.context, options.kubeconfig);
      if (options.output === "json") printJson(report);
      else {
        process.stdout.write(`${renderVersion(report)}\n`);
        if (servers && report.servers && options.context)
          process.stdout.write(`${servers.renderServers(options.context, report.servers)}\n`);
      }
    });
}
