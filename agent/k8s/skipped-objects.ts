/**
 * API objects the agent skips as invalid (a Service with a bad port, …): each problem is logged and
 * counted once, not on every reconcile. The memory of what was reported is bounded (then forgotten,
 * so a problem still there is reported again).
 */
import type { Logger } from "../../lib/log.js";

const MAX_REMEMBERED = 1000;

export class SkippedObjects {
  private readonly logged = new Set<string>();

  constructor(
    private readonly log: Logger,
    private readonly onSkipped: () => void,
  ) {}

  report(object: string, problem: string): void {
    const line = `${object}: ${problem}`;
    if (this.logged.has(line)) return;
    if (this.logged.size >= MAX_REMEMBERED) this.logged.clear();
    this.logged.add(line);
    this.onSkipped();
    this.log.warn({ object, problem }, "skipped invalid object");
  }
}
