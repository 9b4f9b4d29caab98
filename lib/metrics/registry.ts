/**
 * The programs' Prometheus registry, on prom-client (the field's Node.js client): counters and
 * histograms updated as things happen, and gauges/counters read at scrape time from whatever owns
 * the number (a BPF map, a store). A reader that throws yields no samples for its metric, is
 * counted in the collect-errors counter and reported to the owner: one broken source never fails
 * the whole scrape. Only this folder imports prom-client (test/import-rule.test.ts), so meshctl,
 * which never serves metrics, does not load it.
 */

import { Counter, Gauge, Histogram, Registry } from "prom-client";

export type Labels = Record<string, string>;
export interface Sample {
  labels?: Labels;
  value: number;
}
/** Reads a metric's samples at scrape time. */
export type Collect = () => Sample[];

export interface MetricsRegistryOptions {
  /** Name of the counter of readers that threw at scrape time, by metric. */
  collectErrorsMetric: string;
  /** Told about every reader that throws at scrape time (the owner logs it with the error). */
  onCollectError?: (metric: string, error: unknown) => void;
}

/** The Prometheus text exposition format 0.0.4, which every scraper reads. */
export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

export class MetricsRegistry {
  private readonly registry = new Registry();
  /** Rendered after every other metric, so it counts the failures of this very scrape. */
  private readonly errorsRegistry = new Registry();
  private readonly collectErrors: Counter<"metric">;

  constructor(private readonly options: MetricsRegistryOptions) {
    this.collectErrors = new Counter({
      name: options.collectErrorsMetric,
      help: "metric collectors that threw at scrape time",
      labelNames: ["metric"],
      registers: [this.errorsRegistry],
    });
  }

  /** A counter updated as things happen: `inc(labels, by)`. */
  counter(
    name: string,
    help: string,
    labelNames: readonly string[] = [],
  ): (labels?: Labels, by?: number) => void {
    const counter = new Counter({ name, help, labelNames, registers: [this.registry] });
    return (labels = {}, by = 1) => counter.inc(labels, by);
  }

  /** A histogram of durations in seconds: `observe(labels, seconds)`. */
  histogram(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
  ): (labels: Labels, seconds: number) => void {
    const histogram = new Histogram({
      name,
      help,
      labelNames,
      buckets: [...buckets],
      registers: [this.registry],
    });
    return (labels, seconds) => histogram.observe(labels, seconds);
  }

  /** A gauge read at scrape time. */
  gauge(name: string, help: string, labelNames: readonly string[], collect: Collect): void {
    const read = this.reader(name, collect);
    const gauge: Gauge = new Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect: () => {
        gauge.reset();
        for (const sample of read() ?? []) gauge.set(sample.labels ?? {}, sample.value);
      },
    });
    this.dropSamplesOnFailure(gauge, read);
  }

  /** A counter whose value is read at scrape time (e.g. from a BPF map or a store's running total). */
  collectedCounter(name: string, help: string, labelNames: readonly string[], collect: Collect): void {
    const read = this.reader(name, collect);
    const counter: Counter = new Counter({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect: () => {
        counter.reset();
        for (const sample of read() ?? []) counter.inc(sample.labels ?? {}, sample.value);
      },
    });
    this.dropSamplesOnFailure(counter, read);
  }

  /** The exposition text (GET /metrics). */
  async render(): Promise<string> {
    const metrics = await this.registry.metrics();
    return `${metrics}\n${await this.errorsRegistry.metrics()}`;
  }

  /**
   * Wraps a reader so a throw is counted and reported once per scrape and remembered until the
   * metric's get() has run: prom-client would otherwise fail the whole scrape.
   */
  private reader(name: string, collect: Collect): Collect & { failed?: boolean } {
    const read: Collect & { failed?: boolean } = () => {
      read.failed = false;
      try {
        return collect();
      } catch (error) {
        read.failed = true;
        this.collectErrors.inc({ metric: name });
        this.options.onCollectError?.(name, error);
        return [];
      }
    };
    return read;
  }

  /** After a failed read the metric renders no sample at all (a reset unlabelled metric would say 0). */
  private dropSamplesOnFailure(metric: Gauge | Counter, read: { failed?: boolean }): void {
    const get = metric.get.bind(metric);
    metric.get = async () => {
      const result = await get();
      return read.failed ? { ...result, values: [] } : result;
    };
  }
}
