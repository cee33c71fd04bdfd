/**
 * The metric names Weir itself exposes, so that a plugin's metric (core/plugin-host/plugin-metrics.ts)
 * can never carry one: two families of one name make prom-client refuse the registry (a 500 on
 * `/metrics`) and Prometheus refuse the scrape. A worker's WeirMetrics reserves what it registers;
 * the primary's own names are listed here because a worker never registers them.
 */
const reserved = new Set<string>(["weir_worker_restarts_total", "weir_workers"]);

/** Reserves `name` and, for a histogram, the names of its samples. */
export function reserveMetricName(name: string, type: string): void {
  reserved.add(name);
  if (type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) reserved.add(name + s);
}

export function isReservedMetricName(name: string): boolean {
  return reserved.has(name);
}
