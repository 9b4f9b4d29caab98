/**
 * `meshctl agent status --node <node> [--name <lab>] [-o json]`: asks a node's agent for its status
 * over its unix socket (GET /v1/status). In a lab the socket is
 * /run/clustermesh/labs/<lab>/nodes/<node>/agent.sock; --socket overrides it.
 */
import { existsSync } from "node:fs";
import { Command, Option } from "commander";
import { encryptionSummary } from "../../agent/encryption/status-text.js";
import type { AgentStatus } from "../../agent/status/status.js";
import { agentSocketPath, getAgentStatus } from "../../lab/agent-status.js";
import { DEFAULT_LAB_NAME } from "../../lab/plan.js";
import { LabJournal } from "../../lab/state.js";
import { parseOutputFormat, printJson, printTable, UsageError } from "../output.js";

/** Which socket to ask: --socket, else the lab's record of the node. */
export function resolveSocket(options: { node?: string; name: string; socket?: string }): string {
  if (options.socket) return options.socket;
  if (!options.node) throw new UsageError("--node is required (or --socket)");
  const journal = LabJournal.open(options.name);
  if (!journal) throw new UsageError(`no lab named "${options.name}" (see meshctl lab status)`);
  const nodes = journal.snapshot.plan.clusters.flatMap((cluster) => cluster.nodes.map((node) => node.name));
  if (!nodes.includes(options.node)) {
    throw new UsageError(`lab "${options.name}" has no node "${options.node}" (nodes: ${nodes.join(", ")})`);
  }
  const socket = agentSocketPath(options.name, options.node);
  if (!existsSync(socket))
    throw new Error(`the agent on ${options.node} is not running (no socket at ${socket})`);
  return socket;
}

export function printAgentStatus(status: AgentStatus): void {
  const out = (line = "") => process.stdout.write(`${line}\n`);
  const synced = status.health.kubernetes.synced ? "synced" : "syncing";
  out(`Node:        ${status.node} (cluster ${status.cluster.name}, id ${status.cluster.id})`);
  out(`Ready:       ${status.ready ? "yes" : "no"}`);
  out(`Node IP:     ${status.nodeIp ?? "-"}    Pod CIDR: ${status.podCidr ?? "-"}`);
  out(
    `Health:      kubernetes ${synced}, datapath ${status.health.datapath.loaded ? `loaded (${status.health.datapath.links} links)` : "not loaded"}, tunnel ${status.health.tunnel.device}${status.health.tunnel.ifindex ? ` (ifindex ${status.health.tunnel.ifindex})` : " (absent)"}`,
  );
  const last = status.health.lastReconcile;
  if (last) out(`Reconciled:  ${last.at}, ${last.ops} map ops${last.error ? `, error: ${last.error}` : ""}`);
  out();
  out(`Endpoints (${status.endpoints.length}):`);
  if (status.endpoints.length > 0)
    printTable(
      ["POD", "IP", "IDENTITY", "ENDPOINT", "STATE"],
      status.endpoints.map((e) => [e.pod, e.ip, e.identity, e.id, e.state]),
    );
  out();
  out(`Services (${status.services.length}):`);
  if (status.services.length > 0)
    printTable(
      ["FRONTEND", "BACKENDS"],
      status.services.map((s) => [
        s.frontend,
        s.backends.map((b) => (b.state === "active" ? b.address : `${b.address} (terminating)`)).join(", ") ||
          "(none)",
      ]),
    );
  out();
  out(`Identities (${status.identities.length}):`);
  if (status.identities.length > 0)
    printTable(
      ["ID", "LABELS"],
      status.identities.map((i) => [i.id, i.labels.join(" ")]),
    );
  out();
  out(`IP cache (${status.ipcache.length}):`);
  if (status.ipcache.length > 0)
    printTable(
      ["PREFIX", "IDENTITY", "TUNNEL ENDPOINT"],
      status.ipcache.map((e) => [e.prefix, e.identity, e.tunnelEndpoint ?? "-"]),
    );
  out();
  const encryption = encryptionSummary(status.encryption);
  for (const line of encryption.lines) out(line);
  if (encryption.table?.rows.length) printTable(encryption.table.header, encryption.table.rows);
  out();
  const remotes = status.clustermesh?.remoteClusters ?? [];
  out(`Remote clusters (${remotes.length}):`);
  if (remotes.length > 0) {
    const counts = (c: Record<string, number>) =>
      Object.entries(c)
        .map(([reason, n]) => `${reason}=${n}`)
        .join(" ") || "-";
    printTable(
      ["NAME", "READY", "NODES", "ENDPOINTS", "REJECTED NOW", "REJECTED TOTAL (SINCE START)"],
      remotes.map((r) => [
        r.name,
        r.ready ? "yes" : `no: ${r.status}`,
        r.numNodes,
        r.numEndpoints,
        counts(r.rejectedNow),
        counts(r.rejectedTotal),
      ]),
    );
  }
  out();
  out(
    `Counters:    ${Object.entries(status.counters)
      .map(([key, value]) => `${key}=${value}`)
      .join(" ")}`,
  );
}

export function agentCommand(): Command {
  const agent = new Command("agent").description("the per-node clustermesh agents");
  agent
    .command("status")
    .description("health, endpoints, services, identities and ipcache of one node's agent")
    .option("--node <node>", "node name (as in meshctl lab status)")
    .option("--name <lab>", "lab name", DEFAULT_LAB_NAME)
    .option("--socket <path>", "the agent's unix socket (instead of looking the node up in the lab)")
    .addOption(new Option("-o, --output <format>", "text or json").default("text"))
    .action(async (options: { node?: string; name: string; socket?: string; output: string }) => {
      const format = parseOutputFormat(options.output);
      const status = await getAgentStatus(resolveSocket(options));
      if (format === "json") printJson(status);
      else printAgentStatus(status);
      if (!status.ready) process.exitCode = 1;
    });
  return agent;
}
