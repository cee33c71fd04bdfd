/**
 * A metric whose values are read when /metrics is scraped, registered in a prom-client Registry
 * like any of its own metrics: prom-client formats it, and its cluster aggregation
 * (AggregatorRegistry.aggregate) merges it across workers by `aggregator`.
 */
import type { Registry } from "prom-client";
import type { MetricValue } from "./latency-histogram.js";

export type MetricType = "counter" | "gauge" | "histogram";
/** How workers' values are combined (prom-client's aggregators). */
export type Aggregator = "sum" | "min" | "max" | "first" | "average" | "omit";

export interface CollectedMetric {
  name: string;
  help: string;
  type: MetricType;
  aggregator: Aggregator;
  values: MetricValue[];
}

export function registerCollector(registry: Registry, name: string, help: string, type: MetricType, aggregator: Aggregator, read: (out: MetricValue[]) => void): void {
  const metric = {
    name, help, type, aggregator,
    get: async (): Promise<CollectedMetric> => {
      const values: MetricValue[] = [];
      read(values);
      return { name, help, type, aggregator, values };
    },
    reset: () => undefined,
  };
  registry.registerMetric(metric as unknown as Parameters<Registry["registerMetric"]>[0]);
}
