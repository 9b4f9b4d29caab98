/**
 * `meshctl version [-o json]`: the client's version and git commit (./version-info.ts says where the
 * commit comes from). The report is keyed by component so that the in-cluster versions (agent,
 * clustermesh-apiserver, read through --context) can join it later as `servers` without changing
 * what `client` means; nothing here reaches a cluster yet.
 */
import { Command, Option } from "commander";
import { type ClientVersion, clientVersion } from "../../lib/version.js";
import { type OutputFormat, parseOutputFormat, printJson } from "../output.js";

export interface VersionReport {
  client: ClientVersion;
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
    .action((options: { output: OutputFormat }) => {
      const report = versionReport();
      if (options.output === "json") printJson(report);
      else process.stdout.write(`${renderVersion(report)}\n`);
    });
}
