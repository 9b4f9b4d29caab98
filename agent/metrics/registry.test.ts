import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MetricsRegistry } from "./registry.js";

describe("metrics registry", () => {
  it("renders counters and gauges in the Prometheus text format", () => {
    const collectErrors: [string, unknown][] = [];
    const registry = new MetricsRegistry({
      onCollectError: (metric, error) => collectErrors.push([metric, error]),
    });
    const requests = registry.counter("x_requests_total", "requests");
    requests({ command: "add", result: "ok" });
    requests({ command: "add", result: "ok" });
    requests({ command: "del", result: '7"' });
    registry.gauge("x_ready", "ready", () => [{ value: 1 }]);
    registry.gauge("x_broken", "a failing collector yields no samples, and is counted and reported", () => {
      throw new Error("gone");
    });
    assert.equal(
      registry.render(),
      [
        "# HELP x_requests_total requests",
        "# TYPE x_requests_total counter",
        'x_requests_total{command="add",result="ok"} 2',
        'x_requests_total{command="del",result="7\\""} 1',
        "# HELP x_ready ready",
        "# TYPE x_ready gauge",
        "x_ready 1",
        "# HELP x_broken a failing collector yields no samples, and is counted and reported",
        "# TYPE x_broken gauge",
        "# HELP clustermesh_metrics_collect_errors_total metric collectors that threw at scrape time",
        "# TYPE clustermesh_metrics_collect_errors_total counter",
        'clustermesh_metrics_collect_errors_total{metric="x_broken"} 1',
        "",
      ].join("\n"),
    );
    // the error itself reaches the owner (the agent logs it), not only the count
    assert.equal(collectErrors.length, 1);
    assert.equal(collectErrors[0][0], "x_broken");
    assert.equal((collectErrors[0][1] as Error).message, "gone");
    assert.match(registry.render(), /clustermesh_metrics_collect_errors_total\{metric="x_broken"\} 2/);
  });
});
