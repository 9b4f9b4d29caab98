/**
 * Heartbeat (`cilium/.heartbeat`) and sync canary (`cilium/synced/<cluster>/<name>`) values: Go's
 * time.Now().Format(time.RFC3339), e.g. "2026-08-01T12:34:56Z" or "2026-08-01T14:34:56+02:00".
 * Readers only react to the key's events (clock skew); the value is informational.
 */

/** RFC 3339 in UTC without fractional seconds, as Go formats a UTC time. */
export function rfc3339(date: Date = new Date()): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export function isRfc3339(text: string): boolean {
  return RFC3339.test(text) && !Number.isNaN(Date.parse(text));
}
