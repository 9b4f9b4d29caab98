/**
 * lib/process.ts's waitFor, ended by the agent's lifetime signal: at once, also in the middle of a
 * probe (a probe of an API server that does not answer could otherwise hold stop() for minutes).
 */
import { WaitAborted, waitFor } from "../../lib/process.js";

export async function waitUnlessStopped<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { signal, ...timing }: { timeoutMs: number; intervalMs: number; signal: AbortSignal },
): Promise<T> {
  const stopped = () => new WaitAborted(`stopped waiting for ${what}`, { cause: signal.reason });
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(stopped());
    signal.addEventListener("abort", onAbort, { once: true });
  });
  // observed through the race below; this only keeps an abort after the wait from being "unhandled"
  aborted.catch(() => undefined);
  try {
    return await waitFor(
      what,
      () => {
        if (signal.aborted) throw stopped();
        return Promise.race([probe(), aborted]);
      },
      timing,
    );
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}
