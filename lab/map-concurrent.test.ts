import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mapConcurrent } from "./map-concurrent.js";

describe("mapConcurrent", () => {
  it("keeps at most limit in flight and the results in item order", async () => {
    let inFlight = 0;
    let most = 0;
    const results = await mapConcurrent([5, 1, 4, 2, 3, 0, 6], 3, async (delay, index) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((resolve) => setTimeout(resolve, delay * 2));
      inFlight--;
      return index * 10;
    });
    assert.deepEqual(results, [0, 10, 20, 30, 40, 50, 60]);
    assert.equal(most, 3);
  });

  it("rejects with the first failure", async () => {
    await assert.rejects(
      mapConcurrent([1, 2, 3], 2, async (n) => {
        if (n === 2) throw new Error("two failed");
        return n;
      }),
      /two failed/,
    );
  });
});
