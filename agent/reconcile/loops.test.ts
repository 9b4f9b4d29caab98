import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { silentLogger } from "../../lib/log.js";
import { waitFor } from "../../lib/process.js";
import { type LoopName, ReconcileLoops } from "./loops.js";

function countingLoops() {
  const runs: Record<LoopName, number> = {
    datapath: 0,
    meshEndpoints: 0,
    staleEndpoints: 0,
    policy: 0,
    endpointLabels: 0,
  };
  const work = (loop: LoopName) => async () => {
    runs[loop]++;
  };
  const loops = new ReconcileLoops(
    {
      datapath: work("datapath"),
      meshEndpoints: work("meshEndpoints"),
      staleEndpoints: work("staleEndpoints"),
      policy: work("policy"),
      endpointLabels: work("endpointLabels"),
    },
    silentLogger(),
  );
  return { runs, loops };
}

const idle = () => new Promise((resolve) => setTimeout(resolve, 50));

describe("reconcile loops", () => {
  it("run nothing on requests before the agent is ready; runNow runs at once", async () => {
    const { runs, loops } = countingLoops();
    loops.request("datapath", 0);
    loops.request("staleEndpoints", 0);
    await idle();
    assert.deepEqual(runs, {
      datapath: 0,
      meshEndpoints: 0,
      staleEndpoints: 0,
      policy: 0,
      endpointLabels: 0,
    });
    await loops.runNow("meshEndpoints");
    assert.equal(runs.meshEndpoints, 1);
    loops.close();
  });

  it("on arm, run once more exactly the loops requested after their start-up run", async () => {
    const { runs, loops } = countingLoops();
    loops.request("datapath");
    loops.request("meshEndpoints");
    await loops.runNow("datapath"); // covers the datapath request made before it
    loops.request("staleEndpoints"); // made after: must run once the agent is ready
    loops.arm(60_000);
    await waitFor("the pending loops to run", () => runs.meshEndpoints === 1 && runs.staleEndpoints === 1, {
      timeoutMs: 2_000,
    });
    await idle();
    assert.deepEqual(runs, {
      datapath: 1,
      meshEndpoints: 1,
      staleEndpoints: 1,
      policy: 0,
      endpointLabels: 0,
    });
    loops.close();
  });

  it("once armed, a request runs its loop; after close nothing runs", async () => {
    const { runs, loops } = countingLoops();
    loops.arm(60_000);
    loops.request("datapath", 0);
    await waitFor("the datapath loop to run", () => runs.datapath === 1, { timeoutMs: 2_000 });
    loops.close();
    loops.request("datapath", 0);
    await idle();
    assert.equal(runs.datapath, 1);
  });
});
