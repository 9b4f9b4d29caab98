/** A small Prometheus registry: counters and gauges with labels, rendered in the text format 0.0.4. Pure. */

import { AGENT_METRICS } from "../../lib/api/metrics.js";

type Labels = Record<string, string>;

interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge";
  values: Map<string, { labels: Labels; value: number }>;
  /** gauges computed at scrape time */
  collect?: () => { labels?: Labels; value: number }[];
}

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}

function escapeValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatLabels(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return "";
  return `{${keys.map((k) => `${k}="${escapeValue(labels[k])}"`).join(",")}}`;
}

export interface MetricsRegistryOptions {
  /** Told about every collector that throws at scrape time (the agent logs it with the error). */
  onCollectError?: (metric: string, error: unknown) => void;
}

/** Counts collectors that threw, by metric: a scrape shows the failure, not just missing samples. */
export const COLLECT_ERRORS_METRIC = AGENT_METRICS.metricsCollectErrorsTotal;

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();
  private readonly collectErrors = new Map<string, number>();

  constructor(private readonly options: MetricsRegistryOptions = {}) {}

  private family(name: string, help: string, type: Family["type"]): Family {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`bad metric name ${name}`);
    let family = this.families.get(name);
    if (!family) {
      family = { name, help, type, values: new Map() };
      this.families.set(name, family);
    }
    return family;
  }

  counter(name: string, help: string): (labels?: Labels, by?: number) => void {
    const family = this.family(name, help, "counter");
    return (labels = {}, by = 1) => {
      const key = labelKey(labels);
      const entry = family.values.get(key) ?? { labels, value: 0 };
      entry.value += by;
      family.values.set(key, entry);
    };
  }

  gauge(name: string, help: string, collect: () => { labels?: Labels; value: number }[]): void {
    this.family(name, help, "gauge").collect = collect;
  }

  /** A counter whose value is read at scrape time (e.g. from a BPF map). */
  collectedCounter(name: string, help: string, collect: () => { labels?: Labels; value: number }[]): void {
    this.family(name, help, "counter").collect = collect;
  }

  render(): string {
    const lines: string[] = [];
    for (const family of this.families.values()) {
      lines.push(`# HELP ${family.name} ${family.help}`, `# TYPE ${family.name} ${family.type}`);
      let samples: { labels?: Labels; value: number }[] = [...family.values.values()];
      if (family.collect) {
        try {
          samples = family.collect();
        } catch (error) {
          samples = [];
          this.collectErrors.set(family.name, (this.collectErrors.get(family.name) ?? 0) + 1);
          this.options.onCollectError?.(family.name, error);
        }
      }
      for (const sample of samples)
        lines.push(`${family.name}${formatLabels(sample.labels ?? {})} ${sample.value}`);
    }
    if (this.collectErrors.size > 0) {
      lines.push(
        `# HELP ${COLLECT_ERRORS_METRIC} metric collectors that threw at scrape time`,
        `# TYPE ${COLLECT_ERRORS_METRIC} counter`,
      );
      for (const [metric, count] of this.collectErrors)
        lines.push(`${COLLECT_ERRORS_METRIC}${formatLabels({ metric })} ${count}`);
    }
    return `${lines.join("\n")}\n`;
  }
}
