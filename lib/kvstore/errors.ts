/** Typed rejection of a kvstore entry: names the key and what is wrong with it. */

export const REJECT_REASONS = [
  "too-large",
  "not-json",
  "wrong-type",
  "missing-field",
  "bad-key",
  "key-mismatch",
  "cluster-mismatch",
  "cluster-id-mismatch",
  "identity-out-of-range",
  "bad-ip",
  "bad-cidr",
  "bad-labels",
] as const;

export type RejectReason = (typeof REJECT_REASONS)[number];

export class InvalidEntryError extends Error {
  constructor(
    readonly key: string,
    readonly reason: RejectReason,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(`invalid kvstore entry ${key}: ${reason}: ${detail}`, options);
    this.name = "InvalidEntryError";
  }
}

export function emptyRejectCounters(): Record<RejectReason, number> {
  return Object.fromEntries(REJECT_REASONS.map((reason) => [reason, 0])) as Record<RejectReason, number>;
}
