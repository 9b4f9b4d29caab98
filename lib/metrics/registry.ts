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
    const gauge: Gauge = new Gauge({ name, help, labelNames, registers: [this.registry] });
    this.collectInto(name, gauge, collect, (sample) => gauge.set(sample.labels ?? {}, sample.value));
  }

  /** A counter whose value is read at scrape time (e.g. from a BPF map or a store's running total). */
  collectedCounter(name: string, help: string, labelNames: readonly string[], collect: Collect): void {
    const counter: Counter = new Counter({ name, help, labelNames, registers: [this.registry] });
    this.collectInto(name, counter, collect, (sample) => counter.inc(sample.labels ?? {}, sample.value));
  }

  /** The exposition text (GET /metrics). */
  async render(): Promise<string> {
    const metrics = await this.registry.metrics();
    return `${metrics}\n${await this.errorsRegistry.metrics()}`;
  }

  /**
   * Reads the samples into the metric at each scrape. A reader that throws, or a sample prom-client
   * refuses (an undeclared label, a negative counter), leaves the metric without samples for this
   * scrape, is counted and reported: prom-client would otherwise fail the whole scrape, and a reset
   * unlabelled metric would say 0.
   */
  private collectInto(
    name: string,
    metric: Gauge | Counter,
    collect: Collect,
    apply: (sample: Sample) => void,
  ): void {
    const get = metric.get.bind(metric);
    metric.get = async () => {
      metric.reset();
      try {
        for (const sample of collect()) apply(sample);
      } catch (error) {
        this.collectErrors.inc({ metric: name });
        this.options.onCollectError?.(name, error);
        return { ...(await get()), values: [] };
      }
      return get();
    };
  }
}
