/**
 * The agent's own counters, kept twice on purpose: as Prometheus counters (GET /metrics) and as the
 * plain numbers of the status document's `counters` (meshctl and the tests read those).
 */
import { AGENT_METRICS } from "../../lib/api/metrics.js";
import type { MetricsRegistry } from "../../lib/metrics/registry.js";

/** A pod's ADD is a few milliseconds of map writes and netlink; a slow node or a backlog is seconds. */
export const CNI_DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class AgentCounters {
  readonly values: Record<string, number> = {
    cniAdd: 0,
    cniDel: 0,
    cniCheck: 0,
    cniErrors: 0,
    reconciles: 0,
    mapOps: 0,
    skippedObjects: 0,
  };
  private readonly cniRequests;
  private readonly reconciles;
  private readonly ops;
  private readonly problems;
  private readonly cniDuration;

  constructor(metrics: MetricsRegistry) {
    this.cniRequests = metrics.counter(
      AGENT_METRICS.agentCniRequestsTotal,
      "CNI requests by command and result",
      ["command", "result"],
    );
    this.cniDuration = metrics.histogram(
      AGENT_METRICS.cniRequestDurationSeconds,
      "seconds the agent took to answer a CNI request (ADD: endpoint, IP, BPF maps and routes; DEL: their removal), by command and result",
      ["command", "result"],
      CNI_DURATION_BUCKETS,
    );
    this.reconciles = metrics.counter(AGENT_METRICS.agentDatapathReconcilesTotal, "datapath reconciliations");
    this.ops = metrics.counter(AGENT_METRICS.agentDatapathMapOpsTotal, "BPF map writes and deletes applied");
    this.problems = metrics.counter(AGENT_METRICS.agentSkippedObjectsTotal, "API objects skipped as invalid");
  }

  /** result: "ok" or the CNI error code. */
  cniRequest(command: string, result: string, seconds: number): void {
    this.cniRequests({ command, result });
    this.cniDuration({ command, result: result === "ok" ? "ok" : "error" }, seconds);
    if (result !== "ok") this.values.cniErrors++;
    else if (command === "add") this.values.cniAdd++;
    else if (command === "del") this.values.cniDel++;
    else if (command === "check") this.values.cniCheck++;
  }

  reconciled(ops: number): void {
    this.values.reconciles++;
    this.values.mapOps += ops;
    this.reconciles();
    this.ops({}, ops);
  }

  skippedObject(): void {
    this.values.skippedObjects++;
    this.problems();
  }
}
