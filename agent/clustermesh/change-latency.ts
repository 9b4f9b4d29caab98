/**
 * Remote change → programmed in BPF, per remote cluster. A remote's first change not yet in the
 * datapath starts its clock; a datapath run takes the clocks pending when it read its inputs, and
 * stops them once its BPF map writes succeeded. A change that arrives while a run is under way
 * waits for the next run (that run's snapshot predates it), and a failed run puts its clocks back,
 * so the figure is never shorter than the truth. Pure (the clock is passed in).
 */

export class ChangeLatency {
  /** cluster → time of its oldest change not yet taken by a datapath run */
  private pending = new Map<string, number>();
  /** taken by the run under way */
  private inFlight = new Map<string, number>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** A change from `cluster` that the datapath uses. */
  changed(cluster: string): void {
    if (!this.pending.has(cluster)) this.pending.set(cluster, this.now());
  }

  /** A datapath run read its inputs: what is pending now is what it will program. */
  taken(): void {
    for (const [cluster, since] of this.pending) {
      const older = this.inFlight.get(cluster);
      this.inFlight.set(cluster, older === undefined ? since : Math.min(older, since));
    }
    this.pending.clear();
  }

  /** The run wrote the BPF maps: seconds from each taken cluster's oldest change to now. */
  programmed(): [cluster: string, seconds: number][] {
    const now = this.now();
    const done = [...this.inFlight].map(([cluster, since]): [string, number] => [
      cluster,
      (now - since) / 1000,
    ]);
    this.inFlight.clear();
    return done;
  }

  /** The run failed: its changes are pending again (the retry programs them). */
  failed(): void {
    for (const [cluster, since] of this.inFlight) {
      const newer = this.pending.get(cluster);
      this.pending.set(cluster, newer === undefined ? since : Math.min(newer, since));
    }
    this.inFlight.clear();
  }
}
