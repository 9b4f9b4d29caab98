/**
 * The agent's own counters, kept twice on purpose: as Prometheus counters (GET /metrics) and as the
 * plain numbers of the status document's `counters` (meshctl and the tests read those).
 */
import { AGENT_METRICS } from "../../lib/api/metrics.js";
import type { MetricsRegistry } from "./registry.js";

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

  constructor(metrics: MetricsRegistry) {
    this.cniRequests = metrics.counter(
      AGENT_METRICS.agentCniRequestsTotal,
      "CNI requests by command and result",
    );
    this.reconciles = metrics.counter(AGENT_METRICS.agentDatapathReconcilesTotal, "datapath reconciliations");
    this.ops = metrics.counter(AGENT_METRICS.agentDatapathMapOpsTotal, "BPF map writes and deletes applied");
    this.problems = metrics.counter(AGENT_METRICS.agentSkippedObjectsTotal, "API objects skipped as invalid");
  }

  /** result: "ok" or the CNI error code. */
  cniRequest(command: string, result: string): void {
    this.cniRequests({ command, result });
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
