/**
 * A histogram kept as plain numbers: `observe` is a short loop and two additions, no label
 * hashing and no allocation (prom-client's own Histogram hashes its labels on every observe). The
 * metrics collectors turn it into Prometheus buckets only when /metrics is read.
 */

/** Seconds; the same default buckets as prom-client, with 1 ms and 2.5 ms added for a proxy. */
export const DURATION_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class LatencyHistogram {
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last slot is +Inf. Not cumulative. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[] = DURATION_BUCKETS) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > b[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

export interface MetricValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** Appends the Prometheus series of `h` (cumulative `_bucket`s, `_sum`, `_count`) to `out`. */
export function histogramValues(name: string, labels: Record<string, string>, h: LatencyHistogram, out: MetricValue[]): void {
  let cumulative = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.counts[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: h.bounds[i]! }, value: cumulative });
  }
  cumulative += h.counts[h.bounds.length]!;
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: cumulative });
  out.push({ metricName: `${name}_sum`, labels, value: h.sum });
  out.push({ metricName: `${name}_count`, labels, value: h.count });
}
