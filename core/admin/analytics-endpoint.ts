/**
 * `GET /analytics`: the analytics built-in's totals per route, consumer and status class.
 *
 * With `store.redis` they are cluster-wide: every process running the plugin writes its own
 * cumulative totals as one value `weir:analytics:totals:<id>` at most once a second
 * (plugins/analytics/plugin.ts), and this sums every value still in Redis (each expires `ttl`
 * after its process's last write). Without Redis they are this process's, read from the plugin's
 * `weir_analytics_*` series (core/plugin-host/plugin-metrics.ts), which are always current.
 */
import type { WeirRuntime } from "../server/runtime.js";
import type { RedisStore } from "../store/redis-store.js";
import { pluginMetricsSnapshot } from "../plugin-host/plugin-metrics.js";

const KEY_PATTERN = "weir:analytics:totals:*";
const FORMAT = 1;
/** Bounds the SCAN loop (each step returns up to ~1,000 keys). */
const MAX_SCAN_STEPS = 1000;

export interface AnalyticsSeries {
  route: string;
  consumer: string;
  statusClass: string;
  requests: number;
  latencyMsSum: number;
  latencyMsAvg: number;
  responseBytes: number;
  requestBytes: number;
}

export interface AnalyticsReport {
  /** "redis": every process's totals summed; "local": this process's only. */
  source: "redis" | "local";
  /** Processes whose totals are summed (redis), 1 for local. */
  processes: number;
  /** The newest write summed (redis), or now (local). */
  updatedAt: string;
  totals: Omit<AnalyticsSeries, "route" | "consumer" | "statusClass">;
  series: AnalyticsSeries[];
}

type Row = [string, string, string, number, number, number, number];

class Summer {
  private readonly byKey = new Map<string, AnalyticsSeries>();
  add(route: string, consumer: string, statusClass: string, requests: number, latencyMs: number, outBytes: number, inBytes: number): void {
    const key = route + "\u0000" + consumer + "\u0000" + statusClass;
    let s = this.byKey.get(key);
    if (!s) this.byKey.set(key, (s = { route, consumer, statusClass, requests: 0, latencyMsSum: 0, latencyMsAvg: 0, responseBytes: 0, requestBytes: 0 }));
    s.requests += requests;
    s.latencyMsSum += latencyMs;
    s.responseBytes += outBytes;
    s.requestBytes += inBytes;
  }
  report(source: AnalyticsReport["source"], processes: number, updatedAt: number): AnalyticsReport {
    const series = [...this.byKey.values()].sort((a, b) => a.route.localeCompare(b.route) || a.consumer.localeCompare(b.consumer) || a.statusClass.localeCompare(b.statusClass));
    const totals = { requests: 0, latencyMsSum: 0, latencyMsAvg: 0, responseBytes: 0, requestBytes: 0 };
    for (const s of series) {
      s.latencyMsSum = round(s.latencyMsSum);
      s.latencyMsAvg = s.requests ? round(s.latencyMsSum / s.requests) : 0;
      totals.requests += s.requests;
      totals.latencyMsSum += s.latencyMsSum;
      totals.responseBytes += s.responseBytes;
      totals.requestBytes += s.requestBytes;
    }
    totals.latencyMsSum = round(totals.latencyMsSum);
    totals.latencyMsAvg = totals.requests ? round(totals.latencyMsSum / totals.requests) : 0;
    return { source, processes, updatedAt: new Date(updatedAt).toISOString(), totals, series };
  }
}

const round = (n: number) => Math.round(n * 1000) / 1000;

/** This process's totals, from the plugin's own series (current to the last onLog batch). */
export function localAnalytics(): AnalyticsReport {
  const sum = new Summer();
  const snap = pluginMetricsSnapshot();
  const counter = (name: string) => {
    const m = new Map<string, number>();
    for (const s of snap.find((f) => f.name === name)?.series ?? []) m.set(labelKey(s.labels), s.value);
    return m;
  };
  const out = counter("weir_analytics_response_bytes_total");
  const inb = counter("weir_analytics_request_bytes_total");
  for (const s of snap.find((f) => f.name === "weir_analytics_request_duration_seconds")?.series ?? []) {
    const k = labelKey(s.labels);
    sum.add(s.labels.route ?? "", s.labels.consumer ?? "", s.labels.status_class ?? "", s.value, (s.sum ?? 0) * 1000, out.get(k) ?? 0, inb.get(k) ?? 0);
  }
  return sum.report("local", 1, Date.now());
}
const labelKey = (l: Record<string, string>) => `${l.route}\u0000${l.consumer}\u0000${l.status_class}`;

/** Every process's totals in Redis, summed. Rejects when Redis does not answer. */
export async function redisAnalytics(store: RedisStore): Promise<AnalyticsReport> {
  const client = store.client;
  const keys = new Set<string>();
  let cursor = "0";
  for (let step = 0; step < MAX_SCAN_STEPS; step++) {
    const [next, found] = await client.scan(cursor, "MATCH", KEY_PATTERN, "COUNT", 1000);
    for (const k of found) keys.add(k);
    cursor = next;
    if (cursor === "0") break;
  }
  const sum = new Summer();
  let processes = 0;
  let newest = 0;
  const list = [...keys];
  for (let i = 0; i < list.length; i += 500) {
    const values = await client.mget(...list.slice(i, i + 500));
    for (const v of values) {
      if (v === null) continue; // expired between SCAN and MGET
      let parsed: { v?: number; at?: number; rows?: Row[] };
      try { parsed = JSON.parse(v) as typeof parsed; } catch { continue; }
      if (parsed.v !== FORMAT || !Array.isArray(parsed.rows)) continue;
      processes++;
      newest = Math.max(newest, Number(parsed.at) || 0);
      for (const r of parsed.rows) sum.add(String(r[0]), String(r[1]), String(r[2]), num(r[3]), num(r[4]), num(r[5]), num(r[6]));
    }
  }
  return sum.report("redis", processes, newest || Date.now());
}
const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/** The admin handler: cluster-wide with Redis, else this process's; 503 when Redis fails. */
export async function analyticsHandler(rt: WeirRuntime): Promise<[number, unknown]> {
  if (rt.store.kind !== "redis") return [200, localAnalytics()];
  try {
    return [200, await redisAnalytics(rt.store as RedisStore)];
  } catch (err) {
    return [503, { error: `the shared store (store.redis) did not answer: ${(err as Error).message}; this process's own totals are under "local"`, local: localAnalytics() }];
  }
}
