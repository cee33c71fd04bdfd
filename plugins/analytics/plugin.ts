/**
 * analytics: per route, consumer and status class — request counts, latency histogram and bytes —
 * exported on the admin `/metrics` through `ctx.metrics` (core/plugin-host/plugin-metrics.ts).
 * It only has an `onLog` hook, which Weir runs after the response is sent, in batches, off the
 * request path: the request itself pays only for queueing the call.
 *
 * Cluster-wide totals (GET /analytics, core/admin/analytics-endpoint.ts): the isolate also keeps
 * its own running totals per (route, consumer, status class) and, at most once per `flushEvery`
 * (checked on each onLog call: an isolate has no timers), writes them to the store as ONE value,
 * `weir:analytics:totals:<process id>`, with a TTL refreshed on every write. The admin endpoint
 * sums every process's value. One host call per flush whatever the number of series (one
 * `ctx.store.incr` per series and field would be hundreds of async crossings a second), and since
 * each value is a cumulative total, not a delta, a failed or timed-out write loses nothing and
 * counts nothing twice: the next one carries everything.
 */
import { definePlugin, type Context } from "weir/sdk";

interface Config { flushEvery?: string | number; ttl?: string | number }

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)$/;
const DURATION_SCHEMA = { anyOf: [{ type: "integer", minimum: 1 }, { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$" }] };
function toMs(d: string | number | undefined, fallback: number): number {
  if (d === undefined) return fallback;
  if (typeof d === "number") return d;
  const m = DURATION.exec(d)!;
  return Math.round(parseFloat(m[1]!) * UNITS[m[2]!]!);
}

/** Format version of the stored value; the admin endpoint skips values of another version. */
const FORMAT = 1;
/** Series kept for the store, like the host's cardinality bound for ctx.metrics. */
const MAX_SERIES = 5000;

function bytes(v: string | undefined): number {
  if (v === undefined) return 0;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** [route, consumer, statusClass, requests, latencyMsSum, responseBytes, requestBytes] */
type Row = [string, string, string, number, number, number, number];

// One isolate per plugin entry (and per worker process): this state is that entry's, in that process.
const rows = new Map<string, Row>();
let overflow = 0;
/** Names this isolate's value in the store; a fresh isolate (restart, reload) starts from zero under a new id. */
const id = Date.now().toString(36) + "-" + Math.random().toString(36).slice(2, 10);
const started = Date.now();
let lastFlush = 0;
let flushing = false;
let storeDenied = false;
let lastWarning = 0;
let settings: { flushEveryMs: number; ttlMs: number } | null = null;

async function flush(ctx: Context<Config>, now: number, ttlMs: number): Promise<void> {
  flushing = true;
  lastFlush = now;
  const value = JSON.stringify({ v: FORMAT, id, started, at: now, overflow, rows: [...rows.values()] });
  try {
    await ctx.store.set("totals:" + id, value, { ttlMs });
  } catch (err) {
    // Nothing to undo: the next flush writes the same totals and more.
    const message = String((err as Error)?.message ?? err);
    if (/permission|not granted/.test(message)) storeDenied = true;
    if (now - lastWarning > 60_000) {
      lastWarning = now;
      ctx.log.warn("analytics: could not write the totals to the store; GET /analytics lags until it can", { error: message });
    }
  } finally {
    flushing = false;
  }
}

export default definePlugin<Config>({
  name: "analytics",
  version: "1.2.0",
  configSchema: {
    type: "object",
    properties: {
      flushEvery: { ...DURATION_SCHEMA, default: "1s", description: "at most how often this process writes its totals to the store" },
      ttl: { ...DURATION_SCHEMA, default: "24h", description: "how long a process's totals stay in the store after its last write" },
    },
    additionalProperties: false,
  },
  permissions: { store: true },
  onLog(ctx) {
    const status = ctx.response.status;
    const route = ctx.route.name;
    const consumer = ctx.consumer ?? "anonymous";
    const statusClass = status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "other";
    const labels = { route, consumer, status_class: statusClass };
    // The histogram's _count is the request count; _sum the total latency.
    ctx.metrics.observe("request_duration_seconds", ctx.timing.total / 1000, labels);
    // Response bytes as written to the client (chunked bodies and Weir's own answers included);
    // request bytes as announced by the client's Content-Length.
    const out = ctx.response.bodyBytes;
    const inb = bytes(ctx.request.headers.get("content-length"));
    if (out > 0) ctx.metrics.increment("response_bytes_total", out, labels);
    if (inb > 0) ctx.metrics.increment("request_bytes_total", inb, labels);

    // The running totals for the store: plain arithmetic on the hot path of this hook.
    const key = route + "\u0000" + consumer + "\u0000" + statusClass;
    let row = rows.get(key);
    if (row === undefined) {
      if (rows.size >= MAX_SERIES) { overflow++; return; }
      rows.set(key, (row = [route, consumer, statusClass, 0, 0, 0, 0]));
    }
    row[3]++;
    row[4] += ctx.timing.total;
    row[5] += out;
    row[6] += inb;

    if (flushing || storeDenied) return;
    settings ??= { flushEveryMs: toMs(ctx.config.flushEvery, 1000), ttlMs: toMs(ctx.config.ttl, 86_400_000) };
    const now = Date.now();
    if (now - lastFlush < settings.flushEveryMs) return;
    // Only this call becomes async (one store write, off the request path); the others stay sync.
    return flush(ctx, now, settings.ttlMs);
  },
});
