/** The remote-cluster lifecycle's decisions, separated from the I/O that acts on them. Pure. */

export interface LifecycleSettings {
  /** Remote unreachable longer than this → its service backends are withdrawn (0 = never). */
  backendTtlMs: number;
  /** No `cilium/.heartbeat` event for longer than this → reconnect (Cilium: 2 × 1 min + checks). */
  heartbeatTimeoutMs: number;
  /** Period of the connectivity probe. */
  probeIntervalMs: number;
  /** Deadline of one probe. */
  probeTimeoutMs: number;
  /** Consecutive failed probes after which the session is torn down and the client recreated. */
  probeFailuresBeforeReconnect: number;
  reconnectBaseMs: number;
  reconnectMaxMs: number;
}

export const DEFAULT_LIFECYCLE: LifecycleSettings = {
  backendTtlMs: 30_000,
  heartbeatTimeoutMs: 180_000,
  probeIntervalMs: 2_000,
  probeTimeoutMs: 3_000,
  probeFailuresBeforeReconnect: 3,
  reconnectBaseMs: 500,
  reconnectMaxMs: 15_000,
};

/** Exponential backoff before reconnect attempt number `failures` (1-based), capped. */
export function reconnectDelayMs(failures: number, settings: LifecycleSettings): number {
  if (failures <= 0) return 0;
  return Math.min(settings.reconnectMaxMs, settings.reconnectBaseMs * 2 ** Math.min(failures - 1, 16));
}

export function heartbeatSilent(lastHeartbeatAt: number, now: number, settings: LifecycleSettings): boolean {
  return settings.heartbeatTimeoutMs > 0 && now - lastHeartbeatAt > settings.heartbeatTimeoutMs;
}

/**
 * Whether the remote's backends are to be withdrawn: it has been unreachable (no successful
 * probe) for longer than the TTL. Nodes, ipcache and identities are kept (existing connections,
 * encryption state); only new connections are steered to live backends. Cilium #20729.
 */
export function backendsExpired(
  unreachableSince: number | undefined,
  now: number,
  settings: LifecycleSettings,
): boolean {
  return (
    settings.backendTtlMs > 0 &&
    unreachableSince !== undefined &&
    now - unreachableSince > settings.backendTtlMs
  );
}

/** Parses "30s", "500ms", "3m", "0" (durations of the agent's flags). */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) return undefined;
  const value = Number(match[1]);
  const unit = match[2] ?? (value === 0 ? "s" : undefined);
  if (unit === undefined) return undefined;
  return Math.round(value * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[unit as "ms" | "s" | "m" | "h"]);
}
