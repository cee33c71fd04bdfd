/**
 * Everything `GET /metrics` shows for one Weir process (CONTRACT §4), in its own prom-client
 * Registry (several runtimes can share a process in tests). The request path only touches
 * RequestMetrics and the plugins' HookTimers; the rest is read from the runtime at scrape time.
 * With workers, the primary merges every worker's registry (see core/cluster/primary.ts) using
 * each metric's `aggregator`.
 */
import { collectDefaultMetrics, Histogram, Registry } from "prom-client";
import type { Generation } from "../config/generation.js";
import type { PluginSlot } from "../plugin-host/plugin-slot.js";
import { registerCollector } from "./collector.js";
import { histogramValues, type MetricValue } from "./latency-histogram.js";
import { PluginMetrics } from "./plugin-metrics.js";
import { RequestMetrics } from "./request-metrics.js";
import { HISTOGRAM_BUCKETS, pluginFamily, pluginFamilyNames, type MetricBudget } from "../plugin-host/plugin-metrics.js";
import { reserveMetricName } from "./reserved-names.js";
import { registerStoreMetrics } from "./store-metrics.js";
import type { StoreStats } from "../store/memory-store.js";
import { rateLimitStats } from "../store/gcra.js";

/** What the metrics read from the runtime when scraped. */
export interface MetricsSource {
  readonly generation: Generation;
  pluginSlots(): PluginSlot[];
  /** Every plugin entry's ctx.metrics budget. */
  metricBudgets(): MetricBudget[];
  /** The in-process store's figures, when this process holds it. */
  storeStats(): StoreStats | null;
  inflightRequests(): number;
}

export class WeirMetrics {
  readonly registry = new Registry();
  readonly requests = new RequestMetrics();
  readonly plugins = new PluginMetrics();
  readonly reloads = { success: 0, failure: 0 };
  lastReloadAt = 0;
  readonly reloadDuration: Histogram;

  constructor(private readonly source: MetricsSource, options: { processMetrics?: boolean } = {}) {
    const r = this.registry;
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: r });

    registerCollector(r, "weir_requests_total", "Requests answered, by route (empty: refused before routing) and status.", "counter", "sum", (out) => {
      for (const s of this.requests.routes.values())
        for (const [status, n] of s.statuses) out.push({ labels: { route: s.route, status }, value: n });
    });
    registerCollector(r, "weir_request_duration_seconds", "Time from the request's arrival to the end of its response, by route.", "histogram", "sum", (out) => {
      for (const s of this.requests.routes.values()) histogramValues("weir_request_duration_seconds", { route: s.route }, s.duration, out);
    });
    registerCollector(r, "weir_requests_in_flight", "Requests being served now.", "gauge", "sum", (out) => {
      out.push({ labels: {}, value: this.source.inflightRequests() });
    });

    const targets = (out: MetricValue[], read: (t: { healthy: boolean; ejected: boolean; inflight: number; weight: number }) => number) => {
      const gen = this.source.generation;
      if (!gen) return;
      for (const [name, u] of gen.upstreams) for (const t of u.targets) out.push({ labels: { upstream: name, target: t.url }, value: read(t) });
    };
    // Each worker runs its own health checks: a target counts as healthy only if every worker sees it so.
    registerCollector(r, "weir_upstream_target_healthy", "1 when active health checks pass for the target (all workers agree), else 0.", "gauge", "min", (out) => targets(out, (t) => (t.healthy ? 1 : 0)));
    registerCollector(r, "weir_upstream_target_ejected", "1 when passive outlier detection ejected the target (in any worker), else 0.", "gauge", "max", (out) => targets(out, (t) => (t.ejected ? 1 : 0)));
    registerCollector(r, "weir_upstream_target_inflight", "Requests on their way to or from the target now.", "gauge", "sum", (out) => targets(out, (t) => t.inflight));

    registerCollector(r, "weir_plugin_duration_seconds", "Time spent in a plugin hook (until an async hook settled).", "histogram", "sum", (out) => {
      for (const t of this.plugins.timers.values()) {
        for (const hook of ["onRequest", "onResponse", "onLog"] as const)
          if (t[hook].count > 0) histogramValues("weir_plugin_duration_seconds", { plugin: t.plugin, hook }, t[hook], out);
      }
    });
    registerCollector(r, "weir_plugin_errors_total", "Plugin failures (throws, timeouts, memory limit, bad results), by plugin and hook.", "counter", "sum", (out) => {
      for (const t of this.plugins.timers.values()) for (const [hook, n] of t.errors) out.push({ labels: { plugin: t.plugin, hook }, value: n });
    });
    registerCollector(r, "weir_plugin_heap_used_bytes", "V8 heap used by a plugin entry's isolate.", "gauge", "sum", (out) => {
      for (const slot of this.source.pluginSlots()) out.push({ labels: { plugin: slot.current.name, entry: slot.entry.at }, value: slot.current.heapUsed() });
    });
    registerCollector(r, "weir_plugin_degraded", "1 while a plugin entry has failed 5 or more times in a row (GET /plugins state \"degraded\"), else 0.", "gauge", "max", (out) => {
      for (const slot of this.source.pluginSlots()) out.push({ labels: { plugin: slot.current.name, entry: slot.entry.at }, value: slot.current.state === "degraded" ? 1 : 0 });
    });
    registerCollector(r, "weir_ratelimit_store_errors_total", "Rate-limit decisions made without the shared store (Redis down), by the onStoreError policy applied.", "counter", "sum", (out) => {
      const s = rateLimitStats();
      out.push({ labels: { policy: "open" }, value: s.failedOpen });
      out.push({ labels: { policy: "closed" }, value: s.failedClosed });
    });
    registerCollector(r, "weir_plugin_metric_series", "ctx.metrics series a plugin entry made (at most its limits.maxMetricSeries).", "gauge", "sum", (out) => {
      for (const b of this.source.metricBudgets()) out.push({ labels: { plugin: b.plugin, entry: b.entry }, value: b.used });
    });
    registerCollector(r, "weir_plugin_metric_series_dropped_total", "ctx.metrics writes dropped, by reason: limit (past limits.maxMetricSeries), invalid (a bad name, label or value), collision (a name Weir or another metric has).", "counter", "sum", (out) => {
      for (const b of this.source.metricBudgets())
        for (const reason of ["limit", "invalid", "collision"] as const) if (b.dropped[reason] > 0) out.push({ labels: { plugin: b.plugin, entry: b.entry, reason }, value: b.dropped[reason] });
    });
    registerCollector(r, "weir_plugin_heap_limit_bytes", "The memory limit of a plugin entry's isolate.", "gauge", "max", (out) => {
      for (const slot of this.source.pluginSlots()) out.push({ labels: { plugin: slot.current.name, entry: slot.entry.at }, value: slot.current.limits.memoryMb * 1024 * 1024 });
    });

    registerStoreMetrics(r, () => this.source.storeStats());

    registerCollector(r, "weir_config_generation", "The id of the config generation serving new requests.", "gauge", "max", (out) => {
      out.push({ labels: {}, value: this.source.generation?.id ?? 0 });
    });
    registerCollector(r, "weir_config_reloads_total", "Config reloads, by result (success | failure). With workers, the largest count of any worker.", "counter", "max", (out) => {
      out.push({ labels: { result: "success" }, value: this.reloads.success });
      out.push({ labels: { result: "failure" }, value: this.reloads.failure });
    });
    registerCollector(r, "weir_config_last_reload_success_timestamp_seconds", "When the last successful reload was applied (0: never).", "gauge", "max", (out) => {
      out.push({ labels: {}, value: this.lastReloadAt / 1000 });
    });
    this.reloadDuration = new Histogram({
      name: "weir_config_reload_duration_seconds",
      help: "Time to read, validate, compile and swap in a config, successful reloads only.",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [r],
      aggregator: "max",
    });
    // Weir's names are Weir's: a plugin's metric may never carry one (plugin-metrics.ts).
    for (const m of r.getMetricsAsArray()) reserveMetricName(m.name, (m as unknown as { type?: string }).type ?? "");
  }

  reloaded(ok: boolean, ms: number): void {
    if (ok) {
      this.reloads.success++;
      this.lastReloadAt = Date.now();
      this.reloadDuration.observe(ms / 1000);
    } else {
      this.reloads.failure++;
    }
  }

  /** The Prometheus text exposition. */
  text(): Promise<string> {
    this.syncPluginMetrics();
    return this.registry.metrics();
  }

  /** The registry as JSON (what a worker sends the primary to aggregate). */
  json(): ReturnType<Registry["getMetricsAsJSON"]> {
    this.syncPluginMetrics();
    return this.registry.getMetricsAsJSON();
  }

  private readonly pluginFamilies = new Set<string>();

  /**
   * Metrics written by plugins (ctx.metrics, e.g. the analytics built-in) appear when first
   * written: each new family is registered as a collector the first time a scrape sees it, and
   * read on its own at each scrape (a copy of every family per family made a scrape quadratic).
   * A family the registry refuses (its name taken: plugin-metrics.ts refuses those first) is left
   * out rather than failing the scrape.
   */
  private syncPluginMetrics(): void {
    for (const f of pluginFamilyNames()) {
      if (this.pluginFamilies.has(f.name)) continue;
      this.pluginFamilies.add(f.name);
      try {
        this.registerPluginFamily(f);
      } catch {
        /* a name the registry has already: left out, the scrape goes on */
      }
    }
  }

  private registerPluginFamily(f: { name: string; plugin: string; type: "counter" | "histogram" }): void {
    registerCollector(this.registry, f.name, `written by the ${f.plugin} plugin (ctx.metrics)`, f.type, "sum", (out) => {
      const now = pluginFamily(f.name);
      if (!now) return;
      for (const s of now.series) {
        if (now.type === "counter") { out.push({ labels: s.labels, value: s.value }); continue; }
        HISTOGRAM_BUCKETS.forEach((le, i) => out.push({ metricName: `${f.name}_bucket`, labels: { ...s.labels, le: String(le) }, value: s.buckets![i]! }));
        out.push({ metricName: `${f.name}_bucket`, labels: { ...s.labels, le: "+Inf" }, value: s.value });
        out.push({ metricName: `${f.name}_sum`, labels: s.labels, value: s.sum ?? 0 });
        out.push({ metricName: `${f.name}_count`, labels: s.labels, value: s.value });
      }
    });
  }
}
