// The relay's merge of its peers' answers to a GetFlows without follow: by time, N overall.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { GetFlowsResponse } from "./client.js";
import { type HubbleFlow, nsToTimestamp } from "./flow.js";
import { mergeFlowResponses } from "./relay-merge.js";

const merge = (responses: GetFlowsResponse[], plan: { number?: number; first: boolean }) =>
  mergeFlowResponses(responses, plan, (response) => response);

const flow = (node: string, ns: number): GetFlowsResponse => ({
  flow: { uuid: `${node}@${ns}`, node_name: node } as HubbleFlow,
  node_name: node,
  time: nsToTimestamp(BigInt(ns)),
});
const names = (responses: GetFlowsResponse[]) =>
  responses.map((response) => response.flow?.uuid ?? response.node_status?.state_change);

// what three peers answer to number: 2 (each its own last 2), in arrival order
const answers = [
  flow("c1/a", 10),
  flow("c1/a", 40),
  flow("c2/b", 20),
  flow("c2/b", 50),
  flow("c1/c", 5),
  flow("c1/c", 30),
];

describe("relay merge of GetFlows answers", () => {
  it("number N: the last N flows overall, oldest first — not N per node", () => {
    assert.deepEqual(names(merge(answers, { number: 2, first: false })), ["c1/a@40", "c2/b@50"]);
    assert.deepEqual(names(merge(answers, { number: 3, first: false })), ["c1/c@30", "c1/a@40", "c2/b@50"]);
  });

  it("first N: the earliest N overall", () => {
    assert.deepEqual(names(merge(answers, { number: 2, first: true })), ["c1/c@5", "c1/a@10"]);
  });

  it("no number, or fewer flows than asked: every flow, by time", () => {
    const all = ["c1/c@5", "c1/a@10", "c2/b@20", "c1/c@30", "c1/a@40", "c2/b@50"];
    assert.deepEqual(names(merge(answers, { number: undefined, first: false })), all);
    assert.deepEqual(names(merge(answers, { number: 100, first: false })), all);
  });

  it("keeps what is not a flow (a nested relay's missing node) without counting it", () => {
    const missing: GetFlowsResponse = {
      node_status: { state_change: "NODE_UNAVAILABLE", node_names: ["c2/gone"] },
      time: nsToTimestamp(1n),
    };
    assert.deepEqual(names(merge([...answers, missing], { number: 1, first: false })), [
      "NODE_UNAVAILABLE",
      "c2/b@50",
    ]);
  });

  it("equal times keep each peer's own order", () => {
    const tied = [flow("c1/a", 7), flow("c2/b", 7), flow("c1/a", 8)];
    assert.deepEqual(names(merge(tied, { number: 3, first: false })), ["c1/a@7", "c2/b@7", "c1/a@8"]);
  });
});
