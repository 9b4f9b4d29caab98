/**
 * Remote entries the merge does not use, followed across merges: an entry that starts being
 * dropped is reported once (not again at every merge while it stays dropped) and counted in the
 * running totals; `now` is what is dropped at the last merge.
 */
import type { Logger } from "../../lib/log.js";
import { type DroppedEntry, droppedEntryId } from "./merge.js";

export class DropLedger {
  private now = new Map<string, DroppedEntry>();
  /** cluster → reason → drops since the agent started. */
  private readonly totals = new Map<string, Record<string, number>>();

  constructor(private readonly log: Logger) {}

  /** Takes the drops of one merge; logs and counts those that are new; returns them. */
  record(dropped: readonly DroppedEntry[]): DroppedEntry[] {
    const now = new Map(dropped.map((entry) => [droppedEntryId(entry), entry]));
    const fresh: DroppedEntry[] = [];
    for (const [id, entry] of now) {
      if (this.now.has(id)) continue;
      fresh.push(entry);
      const totals = this.totals.get(entry.cluster) ?? {};
      totals[entry.reason] = (totals[entry.reason] ?? 0) + 1;
      this.totals.set(entry.cluster, totals);
      this.log.warn(
        {
          remoteCluster: entry.cluster,
          kind: entry.kind,
          key: entry.key,
          reason: entry.reason,
          detail: entry.detail,
        },
        "dropped remote entry",
      );
    }
    this.now = now;
    return fresh;
  }

  totalsOf(cluster: string): Record<string, number> {
    return { ...(this.totals.get(cluster) ?? {}) };
  }

  /** The cluster was disconnected: its totals go with it. */
  forget(cluster: string): void {
    this.totals.delete(cluster);
  }
}
