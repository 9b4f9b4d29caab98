/**
 * The apiserver's metrics: families read at scrape time from the stores and counters, registered
 * under Cilium's clustermesh-apiserver namespace on the shared prom-client registry.
 */

import { APISERVER_METRIC_NAMESPACE, APISERVER_METRICS } from "../lib/api/metrics.js";
import { type Collect, MetricsRegistry } from "../lib/metrics/registry.js";

export interface MetricFamily {
  /** default: the apiserver's (APISERVER_METRIC_NAMESPACE); KVStoreMesh: cilium_kvstoremesh */
  namespace?: string;
  /** without the namespace: a value of APISERVER_METRICS (or KVSTOREMESH_METRICS) */
  name: string;
  help: string;
  type: "counter" | "gauge";
  labelNames: readonly string[];
  collect: Collect;
}

export function apiserverMetrics(
  families: readonly MetricFamily[],
  onCollectError: (metric: string, error: unknown) => void,
): MetricsRegistry {
  const registry = new MetricsRegistry({
    collectErrorsMetric: `${APISERVER_METRIC_NAMESPACE}_${APISERVER_METRICS.metricsCollectErrorsTotal}`,
    onCollectError,
  });
  for (const family of families) {
    const name = `${family.namespace ?? APISERVER_METRIC_NAMESPACE}_${family.name}`;
    if (family.type === "counter")
      registry.collectedCounter(name, family.help, family.labelNames, family.collect);
    else registry.gauge(name, family.help, family.labelNames, family.collect);
  }
  return registry;
}
