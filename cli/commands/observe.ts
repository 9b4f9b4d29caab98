/**
 * `meshctl observe`: flows from Hubble's observer API with hubble's filters (--from-cluster,
 * --to-cluster, --verdict, --namespace, --pod, ...), readable or `-o json` (one response per line,
 * as `hubble observe -o json`). Sources: by default the Hubble relay of the cluster of --context
 * (or the current context), which merges every connected cluster (lib/hubble/relay-access.ts);
 * --server (an agent's or relay's address, `unix:/path` for a socket); or a lab's nodes (--name,
 * optionally --node): every node is asked and the flows are merged by time; nodes that cannot be
 * reached are named and the rest still shown.
 */
import { Command, Option } from "commander";
import { UsageError } from "../../lib/usage-error.js";
import { parseOutputFormat } from "../output.js";
import { EXISTING_LAB_NAME_HELP } from "./lab.js";
import type { ObserveOptions } from "./observe-options.js";

const collect = (value: string, previous: string[] = []) => [...previous, value];
const count = (flag: string) => (value: string) => {
  if (!/^\d+$/.test(value)) throw new UsageError(`${flag}: "${value}" is not a count`);
  return Number(value);
};

export function observeCommand(): Command {
  const repeatable = (flags: string, description: string) =>
    new Option(flags, description).argParser(collect);
  return new Command("observe")
    .description("show flows (Hubble's observer API of the agents or a relay), with hubble's filters")
    .option("--server <address>", "a Hubble server: host:port or unix:/path/to/hubble.sock")
    .option("--context <name>", "ask this cluster's Hubble relay (the default, with the current context)")
    .option("--kubeconfig <file>", "kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    .option("--name <lab>", EXISTING_LAB_NAME_HELP)
    .option("--node <node>", "only this lab node (default: every node of the lab)")
    .addOption(repeatable("--from-cluster <name>", "flows from endpoints of this cluster"))
    .addOption(repeatable("--to-cluster <name>", "flows to endpoints of this cluster"))
    .addOption(repeatable("--cluster <name>", "flows from or to endpoints of this cluster"))
    .addOption(
      repeatable("--from-pod <[ns/]pod>", "flows from this pod (name prefix; default namespace: default)"),
    )
    .addOption(repeatable("--to-pod <[ns/]pod>", "flows to this pod"))
    .addOption(repeatable("--pod <[ns/]pod>", "flows from or to this pod"))
    .addOption(repeatable("-n, --namespace <ns>", "flows from or to pods of this namespace"))
    .addOption(repeatable("--from-ip <ip|cidr>", "flows from this address"))
    .addOption(repeatable("--to-ip <ip|cidr>", "flows to this address"))
    .addOption(repeatable("--ip <ip|cidr>", "flows from or to this address"))
    .addOption(repeatable("--from-label <selector>", "flows from endpoints with these labels"))
    .addOption(repeatable("--to-label <selector>", "flows to endpoints with these labels"))
    .addOption(repeatable("--verdict <verdict>", "FORWARDED, DROPPED, ..."))
    .addOption(repeatable("--protocol <proto>", "tcp, udp, ..."))
    .addOption(repeatable("--port <port>", "source or destination port"))
    .addOption(repeatable("--to-port <port>", "destination port"))
    .addOption(repeatable("-t, --type <type>", "drop, trace"))
    .addOption(repeatable("--node-name <pattern>", "flows seen by these nodes (glob)"))
    .option("-f, --follow", "keep showing new flows")
    .option("--last <n>", "the last N flows overall, merged by time (default 20)", count("--last"))
    .option("--first <n>", "the first N flows overall", count("--first"))
    .option("--since <when>", "flows since a duration ago (30s, 5m) or an RFC 3339 time")
    .option("--until <when>", "flows until then")
    .option("-o, --output <format>", "text or json", "text")
    .option("--tls-ca <file>", "CA of the server's certificate (mutual TLS with --tls-cert/--tls-key)")
    .option("--tls-cert <file>", "client certificate")
    .option("--tls-key <file>", "client key")
    .option("--tls-server-name <name>", "the name the server's certificate is checked for")
    .action(async (options: ObserveOptions) => {
      const format = parseOutputFormat(options.output);
      const { runObserve } = await import("./observe-action.js");
      await runObserve(options, format);
    });
}
