/**
 * The promlint helper itself: that it reports what Prometheus' parser rejects and what promlint
 * flags, so a clean result in the /metrics tests means something. Builds the binary on first use
 * (scripts/go-build.sh promlint, ~30 s cold; `npm test` builds it before any test starts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ExpositionParseError, promlint } from "./promlint.js";

const CLEAN = `# HELP demo_requests_total Requests answered.
# TYPE demo_requests_total counter
demo_requests_total{code="200"} 3
# HELP demo_ready Whether the demo is ready.
# TYPE demo_ready gauge
demo_ready 1
`;

describe("promlint (Prometheus' text parser + testutil/promlint)", { timeout: 300_000 }, () => {
  it("counts the families of a clean exposition and reports no problem", async () => {
    assert.deepEqual(await promlint(CLEAN), { families: 2, problems: [] });
  });

  it("reports what `promtool check metrics` flags", async () => {
    const report = await promlint("# TYPE demo_requests counter\ndemo_requests 1\n");
    assert.deepEqual(report.problems, [
      { metric: "demo_requests", text: 'counter metrics should have "_total" suffix' },
      { metric: "demo_requests", text: "no help text" },
    ]);
  });

  it("throws ExpositionParseError on what Prometheus' parser rejects", async () => {
    await assert.rejects(promlint('demo{code="200" 1\n'), ExpositionParseError);
    // a second TYPE line for one family fails the whole scrape in Prometheus
    await assert.rejects(promlint(`${CLEAN}# TYPE demo_ready gauge\ndemo_ready 2\n`), ExpositionParseError);
  });
});
