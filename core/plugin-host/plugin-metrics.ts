/**
 * Counters and histograms that plugins write through `ctx.metrics` (the seam between plugins such
 * as `analytics` and the metrics owner, issue 6). Plugins only write; core reads:
 *
 * - `pluginMetricsSnapshot()`: every family as data (for prom-client collectors, or to aggregate
 *   across workers);
 * - `renderPluginMetrics()`: the same as Prometheus text, to append to `GET /metrics`.
 *
 * Names are `weir_<plugin>_<name>` (plugin name with "-" as "_"). Cardinality is bounded: at most
 * MAX_SERIES series per plugin; what would go past is dropped and counted
 * (`weir_plugin_metrics_dropped_total{plugin}`), so a plugin cannot grow the host's memory without
 * bound with label values.
 */

export const HISTOGRAM_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const MAX_SERIES = 5000;
const NAME = /^[a-z_][a-z0-9_]{0,63}$/;
const LABEL = /^[a-z_][a-z0-9_]{0,63}$/;

interface Series { labels: Record<string, string>; value: number; buckets: number[] | null; sum: number }
interface Family { name: string; type: "counter" | "histogram"; plugin: string; series: Map<string, Series> }

const families = new Map<string, Family>();
const seriesPerPlugin = new Map<string, number>();
const dropped = new Map<string, number>();

function family(plugin: string, name: string, type: Family["type"]): Family {
  if (!NAME.test(name)) throw new Error(`ctx.metrics: "${name}" is not a metric name (lower-case letters, digits and _)`);
  const full = `weir_${plugin.replace(/-/g, "_")}_${name}`;
  let f = families.get(full);
  if (!f) families.set(full, (f = { name: full, type, plugin, series: new Map() }));
  else if (f.type !== type) throw new Error(`ctx.metrics: ${name} is a ${f.type}, not a ${type}`);
  return f;
}

function series(f: Family, labels: Record<string, unknown> | undefined): Series | null {
  let key = "";
  const clean: Record<string, string> = {};
  if (labels) {
    for (const k of Object.keys(labels).sort()) {
      if (!LABEL.test(k)) throw new Error(`ctx.metrics: "${k}" is not a label name`);
      const v = String(labels[k]).slice(0, 200);
      clean[k] = v;
      key += k + "\u0000" + v + "\u0000";
    }
  }
  let s = f.series.get(key);
  if (s) return s;
  const n = seriesPerPlugin.get(f.plugin) ?? 0;
  if (n >= MAX_SERIES) { dropped.set(f.plugin, (dropped.get(f.plugin) ?? 0) + 1); return null; }
  seriesPerPlugin.set(f.plugin, n + 1);
  s = { labels: clean, value: 0, buckets: f.type === "histogram" ? new Array(HISTOGRAM_BUCKETS.length).fill(0) : null, sum: 0 };
  f.series.set(key, s);
  return s;
}

export function incrementMetric(plugin: string, name: string, by: number, labels?: Record<string, unknown>): void {
  if (!Number.isFinite(by) || by < 0) throw new Error("ctx.metrics.increment: by must be a number >= 0");
  const s = series(family(plugin, name, "counter"), labels);
  if (s) s.value += by;
}

export function observeMetric(plugin: string, name: string, value: number, labels?: Record<string, unknown>): void {
  if (!Number.isFinite(value)) throw new Error("ctx.metrics.observe: value must be a finite number");
  const s = series(family(plugin, name, "histogram"), labels);
  if (!s) return;
  s.value++;
  s.sum += value;
  for (let i = 0; i < HISTOGRAM_BUCKETS.length; i++) if (value <= HISTOGRAM_BUCKETS[i]!) { s.buckets![i]!++; break; }
}

export interface MetricSnapshot {
  name: string;
  type: "counter" | "histogram";
  plugin: string;
  /** counter: value; histogram: count, sum and cumulative bucket counts (le as in HISTOGRAM_BUCKETS, then +Inf). */
  series: { labels: Record<string, string>; value: number; sum?: number; buckets?: number[] }[];
}

export function pluginMetricsSnapshot(): MetricSnapshot[] {
  const out: MetricSnapshot[] = [];
  for (const f of families.values()) {
    out.push({
      name: f.name, type: f.type, plugin: f.plugin,
      series: [...f.series.values()].map((s) => {
        if (!s.buckets) return { labels: { ...s.labels }, value: s.value };
        let acc = 0;
        return { labels: { ...s.labels }, value: s.value, sum: s.sum, buckets: s.buckets.map((b) => (acc += b)) };
      }),
    });
  }
  return out;
}

const esc = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
const labelText = (l: Record<string, string>, extra = "") => {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${esc(v)}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
};

/** Prometheus text exposition (version 0.0.4) of every plugin metric. */
export function renderPluginMetrics(): string {
  const lines: string[] = [];
  for (const f of pluginMetricsSnapshot()) {
    lines.push(`# HELP ${f.name} written by the ${f.plugin} plugin`, `# TYPE ${f.name} ${f.type}`);
    for (const s of f.series) {
      if (f.type === "counter") { lines.push(`${f.name}${labelText(s.labels)} ${s.value}`); continue; }
      HISTOGRAM_BUCKETS.forEach((le, i) => lines.push(`${f.name}_bucket${labelText(s.labels, `le="${le}"`)} ${s.buckets![i]}`));
      lines.push(`${f.name}_bucket${labelText(s.labels, 'le="+Inf"')} ${s.value}`, `${f.name}_sum${labelText(s.labels)} ${s.sum}`, `${f.name}_count${labelText(s.labels)} ${s.value}`);
    }
  }
  if (dropped.size) {
    lines.push("# HELP weir_plugin_metrics_dropped_total series a plugin wrote past its cardinality limit", "# TYPE weir_plugin_metrics_dropped_total counter");
    for (const [p, n] of dropped) lines.push(`weir_plugin_metrics_dropped_total{plugin="${esc(p)}"} ${n}`);
  }
  return lines.length ? lines.join("\n") + "\n" : "";
}

/** For tests: forget everything. */
export function resetPluginMetrics(): void {
  families.clear(); seriesPerPlugin.clear(); dropped.clear();
}
