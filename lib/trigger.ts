import type { Logger } from "./log.js";

/**
 * Runs work when triggered, never twice at once; triggers during a run coalesce into one more run.
 * A failing run is retried after retryMs (level-triggered reconciliation).
 */
export class Trigger {
  private running = false;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly name: string,
    private readonly work: () => Promise<void>,
    private readonly log: Logger,
    private readonly debounceMs = 10,
    private readonly retryMs = 1_000,
  ) {}

  trigger(delayMs = this.debounceMs): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.runOnce();
    }, delayMs);
  }

  /** Runs now (or right after the current run) and resolves when a run that started after this call ends. */
  async runNow(): Promise<void> {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.running) {
      this.again = true;
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      return;
    }
    await this.runOnce();
  }

  private async runOnce(): Promise<void> {
    this.running = true;
    this.again = false;
    let failed = false;
    try {
      await this.work();
    } catch (error) {
      failed = true;
      this.log.warn({ err: error, loop: this.name }, "reconcile failed; retrying");
    } finally {
      this.running = false;
    }
    if (this.again) {
      await this.runOnce();
      return;
    }
    const waiters = this.idleWaiters.splice(0);
    for (const resolve of waiters) resolve();
    if (failed) this.trigger(this.retryMs);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
