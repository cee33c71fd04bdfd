/**
 * Counters and histograms that plugins write through `ctx.metrics` (the seam between plugins such
 * as `analytics` and the metrics owner). Plugins only write; core reads:
 *
 * - `pluginMetricsSnapshot()`: every family as data (for prom-client collectors, or to aggregate
 *   across workers); `pluginFamily(name)` one of them;
 * - `renderPluginMetrics()`: the same as Prometheus text.
 *
 * Names are `weir_<plugin>_<name>` (plugin name with "-" as "_"). A plugin's metrics can neither
 * grow the host without bound nor break a scrape:
 * - each plugin entry makes at most `limits.maxMetricSeries` series (MetricBudget, default 1,000);
 *   a write that would make one more is dropped and counted
 *   (`weir_plugin_metric_series_dropped_total{plugin,entry,reason}`); a family exists only with a
 *   series, so distinct names are bounded the same way;
 * - a family whose samples would carry one of Weir's own metric names (reserved-names.ts), or a
 *   name another family's samples carry (`x_count` beside a histogram `x`, or two plugins whose
 *   names meet once "-" is "_"), is refused: the exposition never holds a name twice;
 * - names and labels follow Prometheus' rules (no `__` label, no `le` on a histogram, at most
 *   MAX_LABELS labels, values cut at 200 characters); what breaks them is dropped and counted.
 */
import { isReservedMetricName } from "../metrics/reserved-names.js";

export const HISTOGRAM_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Series one plugin entry may make, unless its `limits.maxMetricSeries` says otherwise. */
export const DEFAULT_MAX_METRIC_SERIES = 1000;
export const MAX_LABELS = 16;
const MAX_LABEL_VALUE = 200;
const NAME = /^[a-z_][a-z0-9_]{0,63}$/;
const LABEL = /^[a-z_][a-z0-9_]{0,63}$/;

/** Why a write was dropped: over the entry's series limit, invalid, or a name that is taken. */
export type DropReason = "limit" | "invalid" | "collision";

/**
 * One plugin entry's share of the plugin metrics: the series it made and the writes dropped. It
 * outlives hot reloads of the entry's plugin (the host hands the same one to the next version),
 * so a reload does not grant a fresh 1,000.
 */
export class MetricBudget {
  /** Series this entry made. */
  used = 0;
  readonly dropped: Record<DropReason, number> = { limit: 0, invalid: 0, collision: 0 };
  constructor(readonly plugin: string, readonly entry: string, public limit: number) {}
}

interface Series { labels: Record<string, string>; value: number; buckets: number[] | null; sum: number }
interface Family { name: string; type: "counter" | "histogram"; plugin: string; series: Map<string, Series> }

const families = new Map<string, Family>();
/** Every sample name the families' exposition holds (a histogram's `_bucket`, `_sum`, `_count` too), by family. */
const sampleNames = new Map<string, string>();

const samplesOf = (full: string, type: Family["type"]) => (type === "counter" ? [full] : [full, `${full}_bucket`, `${full}_sum`, `${full}_count`]);

/** A write Weir did not take: why, and what to tell the plugin's author. */
export interface MetricDrop { reason: DropReason; message: string }
const drop = (reason: DropReason, message: string): MetricDrop => ({ reason, message });

/**
 * Adds `value` to counter `name` (op 0) or observes it in histogram `name` (op 1) for the entry
 * of `budget`. Returns null, or the drop (already counted in the budget).
 */
export function writeMetric(budget: MetricBudget, op: 0 | 1, name: string, value: number, labels: unknown): MetricDrop | null {
  const d = write(budget, op, name, value, labels);
  if (d !== null) budget.dropped[d.reason]++;
  return d;
}

function write(budget: MetricBudget, op: 0 | 1, name: string, value: number, labels: unknown): MetricDrop | null {
  const type = op === 0 ? "counter" : "histogram";
  if (!NAME.test(name)) return drop("invalid", `ctx.metrics: ${JSON.stringify(name.slice(0, 100))} is not a metric name (lower-case letters, digits and _, at most 64)`);
  if (op === 0 ? !Number.isFinite(value) || value < 0 : !Number.isFinite(value))
    return drop("invalid", op === 0 ? "ctx.metrics.increment: by must be a number >= 0" : "ctx.metrics.observe: value must be a finite number");
  const parsed = parseLabels(labels, type);
  if (typeof parsed === "string") return drop("invalid", parsed);
  const full = `weir_${budget.plugin.replace(/-/g, "_")}_${name}`;
  let f = families.get(full);
  if (f !== undefined) {
    if (f.plugin !== budget.plugin) return drop("collision", `ctx.metrics: ${full} is the plugin "${f.plugin}"'s metric; choose another name`);
    if (f.type !== type) return drop("invalid", `ctx.metrics: ${name} is a ${f.type}, not a ${type}`);
  } else {
    for (const sample of samplesOf(full, type)) {
      if (isReservedMetricName(sample)) return drop("collision", `ctx.metrics: ${sample} is one of Weir's own metric names; choose another name`);
      const owner = sampleNames.get(sample);
      if (owner !== undefined) return drop("collision", `ctx.metrics: ${full} would repeat ${sample}, a sample of ${owner}; choose another name`);
    }
  }
  let s = f?.series.get(parsed.key);
  if (s === undefined) {
    if (budget.used >= budget.limit) return drop("limit", `ctx.metrics: the entry has made its ${budget.limit} series (limits.maxMetricSeries); writes to new series are dropped and counted in weir_plugin_metric_series_dropped_total`);
    if (f === undefined) {
      families.set(full, (f = { name: full, type, plugin: budget.plugin, series: new Map() }));
      for (const sample of samplesOf(full, type)) sampleNames.set(sample, full);
    }
    budget.used++;
    s = { labels: parsed.labels, value: 0, buckets: type === "histogram" ? new Array(HISTOGRAM_BUCKETS.length).fill(0) : null, sum: 0 };
    f.series.set(parsed.key, s);
  }
  if (op === 0) { s.value += value; return null; }
  s.value++;
  s.sum += value;
  for (let i = 0; i < HISTOGRAM_BUCKETS.length; i++) if (value <= HISTOGRAM_BUCKETS[i]!) { s.buckets![i]!++; break; }
  return null;
}

function parseLabels(labels: unknown, type: Family["type"]): { key: string; labels: Record<string, string> } | string {
  const clean: Record<string, string> = {};
  let key = "";
  if (labels === undefined || labels === null) return { key, labels: clean };
  if (typeof labels !== "object" || Array.isArray(labels)) return "ctx.metrics: labels must be an object of names and values";
  const names = Object.keys(labels).sort();
  if (names.length > MAX_LABELS) return `ctx.metrics: ${names.length} labels; at most ${MAX_LABELS}`;
  for (const k of names) {
    if (!LABEL.test(k) || k.startsWith("__")) return `ctx.metrics: ${JSON.stringify(k.slice(0, 100))} is not a label name (lower-case letters, digits and _, not starting with __)`;
    if (k === "le" && type === "histogram") return "ctx.metrics: \"le\" is the histogram's own label (its buckets)";
    const v = String((labels as Record<string, unknown>)[k]).slice(0, MAX_LABEL_VALUE);
    clean[k] = v;
    key += k + "\u0000" + v + "\u0000";
  }
  return { key, labels: clean };
}

export interface MetricSnapshot {
  name: string;
  type: "counter" | "histogram";
  plugin: string;
  /** counter: value; histogram: count, sum and cumulative bucket counts (le as in HISTOGRAM_BUCKETS, then +Inf). */
  series: { labels: Record<string, string>; value: number; sum?: number; buckets?: number[] }[];
}

function snapshotOf(f: Family): MetricSnapshot {
  return {
    name: f.name, type: f.type, plugin: f.plugin,
    series: [...f.series.values()].map((s) => {
      if (!s.buckets) return { labels: { ...s.labels }, value: s.value };
      let acc = 0;
      return { labels: { ...s.labels }, value: s.value, sum: s.sum, buckets: s.buckets.map((b) => (acc += b)) };
    }),
  };
}

export function pluginMetricsSnapshot(): MetricSnapshot[] {
  return [...families.values()].map(snapshotOf);
}

/** One family as data, or undefined (read per family at scrape time: no copy of the others). */
export function pluginFamily(name: string): MetricSnapshot | undefined {
  const f = families.get(name);
  return f === undefined ? undefined : snapshotOf(f);
}

/** The names of every family, in the order they were made. */
export function pluginFamilyNames(): { name: string; plugin: string; type: Family["type"] }[] {
  return [...families.values()].map((f) => ({ name: f.name, plugin: f.plugin, type: f.type }));
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
  return lines.length ? lines.join("\n") + "\n" : "";
}

/** For tests: forget every family (budgets belong to their entries). */
export function resetPluginMetrics(): void {
  families.clear(); sampleNames.clear();
}
