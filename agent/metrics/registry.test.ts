import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MetricsRegistry } from "./registry.js";

describe("metrics registry", () => {
  it("renders counters and gauges in the Prometheus text format", () => {
    const registry = new MetricsRegistry();
    const requests = registry.counter("x_requests_total", "requests");
    requests({ command: "add", result: "ok" });
    requests({ command: "add", result: "ok" });
    requests({ command: "del", result: '7"' });
    registry.gauge("x_ready", "ready", () => [{ value: 1 }]);
    registry.gauge("x_broken", "a failing collector yields no samples", () => {
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
        "# HELP x_broken a failing collector yields no samples",
        "# TYPE x_broken gauge",
        "",
      ].join("\n"),
    );
  });
});
