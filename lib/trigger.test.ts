import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { silentLogger } from "./log.js";
import { waitFor } from "./process.js";
import { Trigger } from "./trigger.js";

describe("Trigger (level-triggered loop)", () => {
  it("never runs twice at once; triggers during a run coalesce into one more run", async () => {
    let runs = 0;
    let concurrent = 0;
    let release: () => void = () => {};
    const trigger = new Trigger(
      "t",
      async () => {
        runs++;
        concurrent++;
        assert.equal(concurrent, 1, "two runs at once");
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        concurrent--;
      },
      silentLogger(),
      1,
    );
    trigger.trigger();
    await waitFor("the first run", () => runs === 1, { timeoutMs: 2_000, intervalMs: 5 });
    for (let i = 0; i < 5; i++) trigger.trigger();
    release();
    await waitFor("exactly one more run", () => runs === 2, { timeoutMs: 2_000, intervalMs: 5 });
    release();
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(runs, 2);
    trigger.close();
  });

  it("runNow resolves once a run that started after the call has ended", async () => {
    const seen: number[] = [];
    let value = 0;
    const trigger = new Trigger(
      "t",
      async () => {
        seen.push(value);
      },
      silentLogger(),
    );
    value = 1;
    await trigger.runNow();
    value = 2;
    await trigger.runNow();
    assert.deepEqual(seen, [1, 2]);
    trigger.close();
  });

  it("retries a failed run after retryMs, and not after close", async () => {
    let runs = 0;
    const trigger = new Trigger(
      "t",
      async () => {
        runs++;
        if (runs < 3) throw new Error("not yet");
      },
      silentLogger(),
      1,
      10,
    );
    trigger.trigger();
    await waitFor("two retries", () => runs === 3, { timeoutMs: 2_000, intervalMs: 5 });
    trigger.close();
    trigger.trigger();
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(runs, 3);
  });
});
