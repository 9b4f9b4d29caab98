/**
 * Follows the e2e binary's verbose Ginkgo output (--ginkgo.v) and yields one line per finished
 * spec: "<STATE> <seconds>s <spec text>". Ginkgo prints a spec's header (its text, then its
 * source location on the next line) when it starts; when it ends, "• [<seconds> seconds]" for a
 * pass, "S [SKIPPED] [...]" for a skip at run time, and "• [FAILED] [...]" (or PANICKED, TIMEDOUT,
 * INTERRUPTED) followed by the header again. Specs the focus left out print only "S".
 */
const RESULT = /^(?:•|S) (?:\[([A-Z]+)\] )?\[([\d.]+) seconds\]$/;
const LOCATION = /^k8s\.io\/\S+\.go:\d+$/;

export class SpecProgress {
  private previous = "";
  private header = "";
  private pending: { state: string; seconds: string } | undefined;

  /** Feeds one output line; returns the finished spec's line when this line completes one. */
  line(text: string): string | undefined {
    const previous = this.previous;
    this.previous = text;
    if (LOCATION.test(text) && previous.startsWith("[")) {
      this.header = previous.replace(" [It] ", " ");
      if (this.pending) {
        const done = `${this.pending.state} ${this.pending.seconds}s ${this.header}`;
        this.pending = undefined;
        return done;
      }
      return undefined;
    }
    const result = RESULT.exec(text);
    if (!result) return undefined;
    const state = result[1] ?? "PASSED";
    if (state === "PASSED" || state === "SKIPPED") return `${state} ${result[2]}s ${this.header}`;
    // the failure report repeats the header on the next lines
    this.pending = { state, seconds: result[2] };
    return undefined;
  }
}
