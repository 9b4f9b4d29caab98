import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WaitAborted } from "../../lib/process.js";
import { waitUnlessStopped } from "./wait.js";

describe("waiting during start-up", () => {
  it("returns the probe's value", async () => {
    let calls = 0;
    const value = await waitUnlessStopped("three calls", () => (++calls === 3 ? "done" : undefined), {
      timeoutMs: 2_000,
      intervalMs: 1,
      signal: new AbortController().signal,
    });
    assert.equal(value, "done");
  });

  it("gives up at once when the agent stops, even while a probe hangs", async () => {
    const lifetime = new AbortController();
    const started = Date.now();
    const waiting = waitUnlessStopped("a probe that never answers", () => new Promise<boolean>(() => {}), {
      timeoutMs: 60_000,
      intervalMs: 10,
      signal: lifetime.signal,
    });
    setTimeout(() => lifetime.abort(new Error("stopping")), 20);
    await assert.rejects(
      waiting,
      (error: unknown) => error instanceof WaitAborted && /never answers/.test(String(error)),
    );
    assert.ok(Date.now() - started < 5_000);
  });
});
