import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  fieldValue,
  matchesFields,
  matchesLabels,
  parseFieldSelector,
  parseLabelSelector,
  requirementsFromObject,
} from "./selectors.js";

describe("label selectors", () => {
  const labels = { app: "web", tier: "front", version: "3" };
  const cases: [string, boolean][] = [
    ["", true],
    ["app=web", true],
    ["app==web", true],
    ["app!=web", false],
    ["app=db", false],
    ["app in (web, db)", true],
    ["app notin (web,db)", false],
    ["missing notin (a)", true],
    ["tier", true],
    ["!tier", false],
    ["!missing", true],
    ["app=web,tier in (front),!canary", true],
    ["version>2", true],
    ["version<3", false],
  ];
  for (const [selector, expected] of cases) {
    it(`"${selector}" → ${expected}`, () => {
      assert.equal(matchesLabels(parseLabelSelector(selector), labels), expected);
    });
  }

  it("rejects malformed selectors", () => {
    assert.throws(() => parseLabelSelector("app in (web"));
    assert.throws(() => parseLabelSelector("app=we b"));
    assert.throws(() => parseLabelSelector("-bad=x"));
  });

  it("converts matchLabels/matchExpressions", () => {
    const req = requirementsFromObject({
      matchLabels: { app: "web" },
      matchExpressions: [{ key: "tier", operator: "In", values: ["front"] }],
    });
    assert.ok(matchesLabels(req, labels));
    assert.ok(!matchesLabels(req, { app: "web" }));
  });
});

describe("field selectors", () => {
  const pod = {
    metadata: { name: "p1", namespace: "ns" },
    spec: { nodeName: "n1" },
    status: { phase: "Running" },
  };

  it("matches equality and inequality on any dotted path", () => {
    assert.ok(matchesFields(parseFieldSelector("metadata.name=p1,spec.nodeName==n1"), pod));
    assert.ok(matchesFields(parseFieldSelector("status.phase!=Pending"), pod));
    assert.ok(!matchesFields(parseFieldSelector("metadata.namespace=other"), pod));
    assert.ok(matchesFields(parseFieldSelector("spec.missing="), pod), "absent fields compare as empty");
  });

  it("unescapes values", () => {
    assert.deepEqual(parseFieldSelector("metadata.name=a\\,b"), [
      { path: "metadata.name", equal: true, value: "a,b" },
    ]);
    assert.equal(fieldValue(pod, "metadata.name"), "p1");
  });

  it("rejects garbage", () => {
    assert.throws(() => parseFieldSelector("no operator"));
  });
});
