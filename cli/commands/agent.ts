/**
 * `meshctl agent status --node <node> [--name <lab>] [-o json]`: asks a node's agent for its status
 * over its unix socket (GET /v1/status). In a lab the socket is
 * /run/clustermesh-lab/<lab>/nodes/<node>/root/run/clustermesh/agent.sock; --socket overrides it. --name follows the rule
 * of every lab command (./lab-name.ts), loaded only when the action runs.
 */
import { Command, Option } from "commander";
import { type AgentStatus, getAgentStatus } from "../../lib/api/agent-status.js";
import { inSync } from "../../lib/clustermesh/status.js";
import { UsageError } from "../../lib/usage-error.js";
import { parseOutputFormat, printJson, printTable } from "../output.js";
import { encryptionSummary, policyCells } from "./agent-status-text.js";
import { EXISTING_LAB_NAME_HELP } from "./lab.js";

/** The command that shows a lab node's agent status, exactly as a user runs it (used in hints). */
export function agentStatusCommand(lab: string, node: string): string {
  return `meshctl agent status --name ${lab} --node ${node}`;
}

/** Which socket to ask: --socket, else the lab's record of the node. */
export async function resolveSocket(options: {
  node?: string;
  name?: string;
  socket?: string;
}): Promise<string> {
  if (options.socket) return options.socket;
  if (!options.node) throw new UsageError("--node is required (or --socket)");
  const [{ existingLabName }, { labAgentSocket }] = await Promise.all([
    import("./lab-name.js"),
    import("./lab-facts.js"),
  ]);
  return labAgentSocket(existingLabName(options.name), options.node);
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
      ["POD", "IP", "IDENTITY", "ENDPOINT", "STATE", "POLICY IN/OUT", "DROPS IN/OUT"],
      status.endpoints.map((e) => [e.pod, e.ip, e.identity, e.id, e.state, ...policyCells(e.policy)]),
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
      [
        "NAME",
        "READY",
        "NODES",
        "ENDPOINTS",
        "REJECTED NOW",
        "REJECTED TOTAL (SINCE START)",
        "IGNORED NOW",
        "BPF MAPS VS PUBLISHED",
      ],
      remotes.map((r) => [
        r.name,
        r.ready ? "yes" : `no: ${r.status}`,
        r.numNodes,
        r.numEndpoints,
        counts(r.rejectedNow),
        counts(r.rejectedTotal),
        counts(r.ignoredNow ?? {}),
        !r.datapath
          ? "unknown"
          : inSync(r.datapath)
            ? "in sync"
            : `${r.datapath.drift.missing} missing, ${r.datapath.drift.extra} extra, ${r.datapath.drift.different} different`,
      ]),
    );
    for (const r of remotes)
      for (const e of r.datapath?.drift.sample ?? [])
        out(`  ${r.name}: ${e.problem} ${e.kind} ${e.entry}${e.detail ? ` (${e.detail})` : ""}`);
  }
  const unowned = status.clustermesh?.unowned;
  if (unowned?.count)
    out(
      `Remote ipcache entries of no connected cluster: ${unowned.count} (${unowned.sample.map((e) => e.entry).join(", ")})`,
    );
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
    .option("--name <lab>", EXISTING_LAB_NAME_HELP)
    .option("--socket <path>", "the agent's unix socket (instead of looking the node up in the lab)")
    .addOption(new Option("-o, --output <format>", "text or json").default("text"))
    .action(async (options: { node?: string; name?: string; socket?: string; output: string }) => {
      const format = parseOutputFormat(options.output);
      const status = await getAgentStatus(await resolveSocket(options));
      if (format === "json") printJson(status);
      else printAgentStatus(status);
      if (!status.ready) process.exitCode = 1;
    });
  return agent;
}
