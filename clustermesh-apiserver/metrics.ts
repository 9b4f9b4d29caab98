/** Prometheus text exposition of the apiserver's counters and gauges. Pure rendering. */

import { APISERVER_METRIC_NAMESPACE } from "../lib/api/metrics.js";

export interface MetricSample {
  name: string;
  help: string;
  type: "counter" | "gauge";
  samples: { labels?: Record<string, string>; value: number }[];
}

const escapeLabelValue = (value: string) =>
  value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');

export function renderMetrics(metrics: readonly MetricSample[]): string {
  const lines: string[] = [];
  for (const metric of metrics) {
    const name = `${APISERVER_METRIC_NAMESPACE}_${metric.name}`;
    lines.push(`# HELP ${name} ${metric.help}`, `# TYPE ${name} ${metric.type}`);
    for (const sample of metric.samples) {
      const labels = Object.entries(sample.labels ?? {});
      const labelText = labels.length
        ? `{${labels.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`
        : "";
      lines.push(`${name}${labelText} ${sample.value}`);
    }
  }
  return `${lines.join("\n")}\n`;
}
