// observe flags → GetFlowsRequest, as the hubble CLI builds it.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { observeRequest, parseTime } from "./cli-filters.js";
import { FlowFilterError } from "./filter.js";

describe("observe flags → GetFlowsRequest", () => {
  it("from/to flags fill one filter; the last 20 by default", () => {
    assert.deepEqual(observeRequest({ fromCluster: ["c2"], verdict: ["dropped"] }), {
      whitelist: [{ verdict: ["DROPPED"], source_cluster_name: ["c2"] }],
      follow: false,
      number: 20,
    });
  });

  it("either-end flags make a source filter and a destination filter, both with the rest", () => {
    const request = observeRequest({ namespace: ["demo"], toCluster: ["c1"], follow: true });
    assert.deepEqual(request.whitelist, [
      { destination_cluster_name: ["c1"], source_pod: ["demo/"] },
      { destination_cluster_name: ["c1"], destination_pod: ["demo/"] },
    ]);
    assert.equal(request.number, undefined, "follow: only new flows");
  });

  it("--first, --last, --since", () => {
    assert.deepEqual([observeRequest({ first: 5 }).number, observeRequest({ first: 5 }).first], [5, true]);
    assert.equal(observeRequest({ last: 3 }).number, 3);
    assert.deepEqual(observeRequest({ since: "5m" }, 600_000).since, { seconds: "300", nanos: 0 });
    assert.equal(parseTime("since", "2026-12-05T12:00:00Z"), 1796472000000000000n);
  });

  it("bad flags name themselves", () => {
    assert.throws(
      () => observeRequest({ type: ["l7"] }),
      (e: unknown) => e instanceof FlowFilterError && e.field === "type",
    );
    assert.throws(
      () => observeRequest({ since: "yesterday" }),
      (e: unknown) => e instanceof FlowFilterError && e.field === "since",
    );
    assert.throws(() => observeRequest({ first: 1, last: 1 }), FlowFilterError);
  });
});
