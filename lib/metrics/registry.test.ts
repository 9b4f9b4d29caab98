import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MetricsRegistry } from "./registry.js";

interface Family {
  help: string;
  type: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

/**
 * A strict reader of the text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/#text-based-format): every line is
 * a HELP, a TYPE or a sample of the family declared above it (histograms: _bucket, _sum, _count),
 * label values are quoted and escaped, values are floats. Throws on anything else.
 */
function parseExposition(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  let current: string | undefined;
  const sampleLine = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\["\\n])*)"(,|$)/y;
  assert.ok(text.endsWith("\n"), "ends with a newline");
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta;
      const family = families.get(name) ?? { help: "", type: "untyped", samples: [] };
      if (kind === "HELP") family.help = rest;
      else {
        assert.match(rest, /^(counter|gauge|histogram|summary|untyped)$/, line);
        family.type = rest;
      }
      families.set(name, family);
      current = name;
      continue;
    }
    const sample = sampleLine.exec(line);
    assert.ok(sample, `not a sample: ${line}`);
    const [, name, labelText = "", valueText] = sample;
    assert.ok(current, `sample before any TYPE: ${line}`);
    const family = families.get(current) as Family;
    const suffixes = family.type === "histogram" ? ["_bucket", "_sum", "_count"] : [""];
    assert.ok(
      suffixes.some((suffix) => name === `${current}${suffix}`),
      `${name} is not a sample of ${current} (${family.type})`,
    );
    const labels: Record<string, string> = {};
    label.lastIndex = 0;
    while (label.lastIndex < labelText.length) {
      const match = label.exec(labelText);
      assert.ok(match, `bad labels in ${line}`);
      labels[match[1]] = match[2].replace(/\\n/g, "\n").replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    }
    const value = valueText === "+Inf" ? Number.POSITIVE_INFINITY : Number(valueText);
    assert.ok(!Number.isNaN(value), `bad value in ${line}`);
    family.samples.push({ name, labels, value });
  }
  return families;
}

const family = (families: Map<string, Family>, name: string): Family => {
  const found = families.get(name);
  assert.ok(found, `${name} is exposed`);
  return found;
};

describe("metrics registry (prom-client)", () => {
  it("renders counters, gauges and collected counters with their labels in the text format", async () => {
    const registry = new MetricsRegistry({ collectErrorsMetric: "x_collect_errors_total" });
    const requests = registry.counter("x_requests_total", "requests", ["command", "result"]);
    requests({ command: "add", result: "ok" });
    requests({ command: "add", result: "ok" });
    requests({ command: "del", result: '7"\\\n' });
    registry.gauge("x_ready", "ready", [], () => [{ value: 1 }]);
    let packets = 5;
    registry.collectedCounter("x_packets_total", "packets", ["reason"], () => [
      { labels: { reason: "LbDnat" }, value: packets },
    ]);

    const families = parseExposition(await registry.render());
    assert.equal(family(families, "x_requests_total").type, "counter");
    assert.deepEqual(
      family(families, "x_requests_total").samples.map((s) => [s.labels, s.value]),
      [
        [{ command: "add", result: "ok" }, 2],
        [{ command: "del", result: '7"\\\n' }, 1],
      ],
    );
    assert.deepEqual(family(families, "x_ready"), {
      help: "ready",
      type: "gauge",
      samples: [{ name: "x_ready", labels: {}, value: 1 }],
    });
    assert.deepEqual(family(families, "x_packets_total").samples[0], {
      name: "x_packets_total",
      labels: { reason: "LbDnat" },
      value: 5,
    });
    // read at every scrape, not accumulated across scrapes
    packets = 7;
    const again = parseExposition(await registry.render());
    assert.equal(family(again, "x_packets_total").samples[0].value, 7);
  });

  it("renders histograms with every bucket, +Inf, _sum and _count, per label set", async () => {
    const registry = new MetricsRegistry({ collectErrorsMetric: "x_collect_errors_total" });
    const observe = registry.histogram("x_duration_seconds", "durations", ["target_cluster"], [0.01, 0.1, 1]);
    observe({ target_cluster: "c2" }, 0.005);
    observe({ target_cluster: "c2" }, 0.05);
    observe({ target_cluster: "c2" }, 5);
    observe({ target_cluster: "c3" }, 0.5);

    const histogram = family(parseExposition(await registry.render()), "x_duration_seconds");
    assert.equal(histogram.type, "histogram");
    const of = (cluster: string, name: string) =>
      histogram.samples
        .filter((s) => s.labels.target_cluster === cluster && s.name === name)
        .map((s) => (name === "x_duration_seconds_bucket" ? [s.labels.le, s.value] : s.value));
    assert.deepEqual(of("c2", "x_duration_seconds_bucket"), [
      ["0.01", 1],
      ["0.1", 2],
      ["1", 2],
      ["+Inf", 3],
    ]);
    assert.deepEqual(of("c2", "x_duration_seconds_count"), [3]);
    assert.deepEqual(of("c2", "x_duration_seconds_sum"), [5.055]);
    assert.deepEqual(of("c3", "x_duration_seconds_bucket"), [
      ["0.01", 0],
      ["0.1", 0],
      ["1", 1],
      ["+Inf", 1],
    ]);
  });

  it("renders no sample for a collector that throws, counts it and tells the owner; the rest still render", async () => {
    const errors: [string, unknown][] = [];
    const registry = new MetricsRegistry({
      collectErrorsMetric: "x_collect_errors_total",
      onCollectError: (metric, error) => errors.push([metric, error]),
    });
    let broken = true;
    registry.gauge("x_services", "services (unlabelled: a reset would say 0)", [], () => {
      if (broken) throw new Error("map gone");
      return [{ value: 3 }];
    });
    registry.gauge("x_ready", "ready", [], () => [{ value: 1 }]);

    const first = parseExposition(await registry.render());
    assert.deepEqual(family(first, "x_services").samples, []);
    assert.equal(family(first, "x_ready").samples[0].value, 1);
    assert.deepEqual(
      family(first, "x_collect_errors_total").samples.map((s) => [s.labels, s.value]),
      [[{ metric: "x_services" }, 1]],
    );
    assert.equal(errors.length, 1);
    assert.equal(errors[0][0], "x_services");
    assert.equal((errors[0][1] as Error).message, "map gone");

    broken = false;
    const second = parseExposition(await registry.render());
    assert.equal(family(second, "x_services").samples[0].value, 3);
    assert.equal(family(second, "x_collect_errors_total").samples[0].value, 1);
  });

  it("refuses a label the metric did not declare: at the call, or (read at scrape time) as a failed collector", async () => {
    const registry = new MetricsRegistry({ collectErrorsMetric: "x_collect_errors_total" });
    const requests = registry.counter("x_requests_total", "requests", ["command"]);
    assert.throws(() => requests({ cluster: "c2" }), /label/i);
    registry.gauge("x_nodes", "nodes", ["target_cluster"], () => [{ labels: { cluster: "c2" }, value: 1 }]);
    registry.gauge("x_ready", "ready", [], () => [{ value: 1 }]);
    const families = parseExposition(await registry.render());
    assert.deepEqual(family(families, "x_nodes").samples, []);
    assert.equal(family(families, "x_ready").samples[0].value, 1, "the rest of the scrape is served");
    assert.deepEqual(family(families, "x_collect_errors_total").samples[0].labels, { metric: "x_nodes" });
  });
});
