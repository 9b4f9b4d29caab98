/** `meshctl observe`'s action (loaded when it runs: gRPC and the protos only then). */
import { readFileSync } from "node:fs";
import { observeRequest } from "../../lib/hubble/cli-filters.js";
import { type ClientTls, type GetFlowsResponse, HubbleClient } from "../../lib/hubble/client.js";
import { FlowFilterError } from "../../lib/hubble/filter.js";
import { formatFlow } from "../../lib/hubble/format.js";
import { mergeFlowResponses } from "../../lib/hubble/relay-merge.js";
import { UsageError } from "../../lib/usage-error.js";
import type { OutputFormat } from "../output.js";
import type { ObserveOptions } from "./observe-options.js";

interface Source {
  name: string;
  target: string;
  /** the source's own credentials (a cluster's relay), else the --tls-* flags' */
  tls?: ClientTls;
}

/**
 * --server: that server; --name/--node: the lab's agents' sockets; otherwise the Hubble relay of
 * the cluster of --context (or the current context), which merges every connected cluster.
 */
async function sources(options: ObserveOptions): Promise<Source[]> {
  if (options.server) {
    if (options.name || options.node || options.context)
      throw new UsageError("--server excludes --name, --node and --context");
    return [{ name: options.server, target: options.server }];
  }
  if (!options.name && !options.node) {
    const [{ kubeConfigFor }, { relayAccess, RelayAccessError }] = await Promise.all([
      import("../../lib/k8s/client.js"),
      import("../../lib/hubble/relay-access.js"),
    ]);
    let kc: ReturnType<typeof kubeConfigFor>;
    try {
      kc = kubeConfigFor(options.context, options.kubeconfig);
    } catch (error) {
      throw new UsageError((error as Error).message, { cause: error });
    }
    const context = kc.getCurrentContext();
    try {
      const access = await relayAccess(kc, context);
      return [{ name: `${access.clusterName}/relay`, target: access.target, tls: access.tls }];
    } catch (error) {
      if (error instanceof RelayAccessError)
        throw new UsageError(`${error.message}; or ask a lab's nodes with --name`, { cause: error });
      throw error;
    }
  }
  if (options.context) throw new UsageError("--context excludes --name and --node");
  const [{ existingLabName }, { labHubbleSockets }] = await Promise.all([
    import("./lab-name.js"),
    import("./lab-facts.js"),
  ]);
  const sockets = await labHubbleSockets(existingLabName(options.name), options.node);
  return sockets.map(({ node, socket }) => ({ name: node, target: `unix:${socket}` }));
}

function tls(options: ObserveOptions): ClientTls | undefined {
  if (!options.tlsCa) {
    if (options.tlsCert || options.tlsKey) throw new UsageError("--tls-cert and --tls-key need --tls-ca");
    return undefined;
  }
  return {
    ca: readFileSync(options.tlsCa),
    ...(options.tlsCert ? { cert: readFileSync(options.tlsCert) } : {}),
    ...(options.tlsKey ? { key: readFileSync(options.tlsKey) } : {}),
    ...(options.tlsServerName ? { serverName: options.tlsServerName } : {}),
  };
}

function print(response: GetFlowsResponse, format: OutputFormat, source: string): void {
  if (format === "json") {
    process.stdout.write(`${JSON.stringify(response)}\n`);
    return;
  }
  if (response.flow) process.stdout.write(`${formatFlow(response.flow, response.node_name || source)}\n`);
  else if (response.lost_events)
    process.stdout.write(
      `EVENTS LOST: ${response.lost_events.num_events_lost} (${response.lost_events.source}) on ${response.node_name || source}\n`,
    );
  else if (response.node_status)
    process.stdout.write(
      `NODE STATUS: ${response.node_status.state_change} ${(response.node_status.node_names ?? []).join(", ")}\n`,
    );
}

export async function runObserve(options: ObserveOptions, format: OutputFormat): Promise<void> {
  let request: ReturnType<typeof observeRequest>;
  try {
    request = observeRequest({ ...options, node: options.nodeName });
  } catch (error) {
    if (error instanceof FlowFilterError) throw new UsageError(error.message, { cause: error });
    throw error;
  }
  const credentials = tls(options);
  const targets = await sources(options);
  const clients = targets.map((source) => ({
    source,
    client: HubbleClient.connect(source.target, source.tls ?? credentials),
  }));
  const unreachable: string[] = [];
  try {
    if (request.follow) {
      const streams = clients.map(({ source, client }) => {
        const stream = client.getFlows(request, (response) => print(response, format, source.name));
        return stream.done.catch((error: Error) => {
          unreachable.push(`${source.name}: ${error.message}`);
        });
      });
      const stop = () => {
        for (const { client } of clients) client.close();
      };
      process.once("SIGINT", stop);
      await Promise.all(streams);
    } else {
      const collected: Array<{ response: GetFlowsResponse; source: string }> = [];
      await Promise.all(
        clients.map(async ({ source, client }) => {
          try {
            for (const response of await client.flows(request))
              collected.push({ response, source: source.name });
          } catch (error) {
            unreachable.push(`${source.name}: ${(error as Error).message}`);
          }
        }),
      );
      // --last N: the last N overall, not N per server (several clusters' relays, the lab's agents)
      const plan = {
        number: request.number ? Number(request.number) : undefined,
        first: request.first === true,
      };
      for (const { response, source } of mergeFlowResponses(collected, plan, (item) => item.response))
        print(response, format, source);
    }
  } finally {
    for (const { client } of clients) client.close();
  }
  if (unreachable.length) {
    process.stderr.write(`flows missing from ${unreachable.length} of ${targets.length} servers:\n`);
    for (const line of unreachable) process.stderr.write(`  ${line}\n`);
    if (unreachable.length === targets.length) throw new Error("no Hubble server could be reached");
  }
}
