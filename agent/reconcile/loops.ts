/**
 * The agent's reconcile loops and when they run. Level-triggered: each loop recomputes everything
 * from the caches, so a run covers every request made before it started.
 *
 * Until the agent is ready, requests only mark a loop as pending: the start-up sequence runs each
 * loop itself once the caches are complete (a datapath reconcile from half-synced caches would
 * delete the services and ipcache entries a restart must keep). When the agent turns ready, the
 * loops requested after their start-up run run once more, and from then on every request runs its
 * loop (debounced, never twice at once: lib/trigger.ts) and every loop runs every resync interval.
 */
import type { Logger } from "../../lib/log.js";
import { Trigger } from "../../lib/trigger.js";

export type LoopName = "datapath" | "meshEndpoints" | "staleEndpoints" | "policy" | "endpointLabels";

export class ReconcileLoops {
  private readonly triggers: Record<LoopName, Trigger>;
  private readonly pending = new Set<LoopName>();
  private armed = false;
  private resync: NodeJS.Timeout | undefined;

  constructor(work: Record<LoopName, () => Promise<void>>, log: Logger) {
    this.triggers = {
      datapath: new Trigger("datapath", work.datapath, log),
      meshEndpoints: new Trigger("mesh-endpoints", work.meshEndpoints, log),
      staleEndpoints: new Trigger("stale-endpoints", work.staleEndpoints, log),
      policy: new Trigger("policy", work.policy, log),
      endpointLabels: new Trigger("endpoint-labels", work.endpointLabels, log),
    };
  }

  /** Something a loop reads changed: run it after delayMs (or the loop's debounce). */
  request(loop: LoopName, delayMs?: number): void {
    if (this.armed) this.triggers[loop].trigger(delayMs);
    else this.pending.add(loop);
  }

  /** Runs the loop now (start-up) and resolves when that run has ended. */
  async runNow(loop: LoopName): Promise<void> {
    this.pending.delete(loop);
    await this.triggers[loop].runNow();
  }

  /** The agent is ready: requests run their loop from now on; all loops run every resyncMs. */
  arm(resyncMs: number): void {
    this.armed = true;
    for (const loop of this.pending) this.triggers[loop].trigger();
    this.pending.clear();
    this.resync = setInterval(() => {
      for (const trigger of Object.values(this.triggers)) trigger.trigger();
    }, resyncMs);
  }

  /** No run starts after this; a run in progress finishes on its own. */
  close(): void {
    this.armed = false;
    clearInterval(this.resync);
    for (const trigger of Object.values(this.triggers)) trigger.close();
  }
}
