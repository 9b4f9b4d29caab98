/**
 * Drift of a writer's keys: what etcd holds differs from what the writer wrote — a key deleted
 * (missing), overwritten or detached from every lease (altered), or written under the writer's
 * prefix by someone else (stray). Pure decisions; the sync store repairs, drift-monitor.ts observes.
 */

export const DRIFT_KINDS = ["missing", "altered", "stray"] as const;
export type DriftKind = (typeof DRIFT_KINDS)[number];

/** One key as etcd reported it (a watch event or a listing). */
export interface ObservedKey {
  /** Absent: deleted (watch) or not in the listing. */
  present: boolean;
  /** Undefined when listed without values (keys only). */
  value?: string;
  /** "0" = no lease. */
  lease: string;
  /** The key's mod revision, or for a delete event the revision of the delete. */
  modRevision: bigint;
}

/** What the writer believes about a key. */
export interface KnownKey {
  desired: string | undefined;
  /** The value etcd holds as far as the writer knows; undefined = no key. */
  written: string | undefined;
  /** Revision of the writer's last write (or of the key when adopted); undefined = unknown. */
  revision: bigint | undefined;
  /** The writer deletes keys under its prefix that nobody desires (false: it owns single keys only). */
  ownsPrefix: boolean;
}

/**
 * The drift an observation shows, or undefined when it is the writer's own write, older than what
 * the writer knows, or nothing it must repair. A key with the desired value on some other live
 * lease is accepted (it expires with that lease, and then shows up as missing): two writers with
 * the same desired state (a rolling update) must not rewrite each other's keys forever.
 */
export function classifyDrift(known: KnownKey, observed: ObservedKey): DriftKind | undefined {
  if (known.revision !== undefined && observed.modRevision <= known.revision) return undefined;
  if (!observed.present)
    return known.desired !== undefined && known.written !== undefined ? "missing" : undefined;
  if (known.desired === undefined) return known.ownsPrefix ? "stray" : undefined;
  if (observed.value === undefined) return "altered";
  return observed.value === known.desired && observed.lease !== "0" ? undefined : "altered";
}

/**
 * Delay before repairing a key that was repaired `recentRepairs` times in a row shortly before:
 * immediate at first, then doubling, so a writer fighting another one over a key backs off
 * instead of spinning.
 */
export function repairDelayMs(recentRepairs: number, baseMs = 250, maxMs = 30_000): number {
  if (recentRepairs <= 1) return 0;
  return Math.min(maxMs, baseMs * 2 ** (recentRepairs - 2));
}
