import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChangeLatency } from "./change-latency.js";

describe("remote change → programmed in BPF", () => {
  it("measures from a cluster's oldest unprogrammed change to the write of the run that took it", () => {
    let now = 0;
    const latency = new ChangeLatency(() => now);
    latency.changed("c2");
    now = 10;
    latency.changed("c2"); // already pending: the clock keeps the oldest change
    latency.changed("c3");
    now = 30;
    latency.taken();
    now = 50;
    assert.deepEqual(latency.programmed(), [
      ["c2", 0.05],
      ["c3", 0.04],
    ]);
    assert.deepEqual(latency.programmed(), [], "each change is observed once");
  });

  it("leaves a change that arrives during a run for the next run", () => {
    let now = 0;
    const latency = new ChangeLatency(() => now);
    latency.changed("c2");
    latency.taken();
    now = 5;
    latency.changed("c3"); // after the run read its inputs: not in this run's maps
    now = 8;
    assert.deepEqual(latency.programmed(), [["c2", 0.008]]);
    latency.taken();
    now = 20;
    assert.deepEqual(latency.programmed(), [["c3", 0.015]]);
  });

  it("puts a failed run's clocks back, so the retry's figure includes the failure", () => {
    let now = 0;
    const latency = new ChangeLatency(() => now);
    latency.changed("c2");
    latency.taken();
    now = 10;
    latency.changed("c2");
    latency.failed();
    latency.taken();
    now = 100;
    assert.deepEqual(latency.programmed(), [["c2", 0.1]]);
  });
});
