/**
 * analytics: per route, consumer and status class — request counts, latency histogram and bytes —
 * exported on the admin `/metrics` through `ctx.metrics` (core/plugin-host/plugin-metrics.ts).
 * It only has an `onLog` hook, which Weir runs after the response is sent, in batches, off the
 * request path: the request itself pays only for queueing the call.
 */
import { definePlugin } from "weir/sdk";

type Config = Record<string, never>;

function bytes(v: string | undefined): number {
  if (v === undefined) return 0;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

export default definePlugin<Config>({
  name: "analytics",
  version: "1.0.0",
  configSchema: { type: "object", properties: {}, additionalProperties: false },
  onLog(ctx) {
    const status = ctx.response.status;
    const labels = {
      route: ctx.route.name,
      consumer: ctx.consumer ?? "anonymous",
      status_class: status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "other",
    };
    // The histogram's _count is the request count; _sum the total latency.
    ctx.metrics.observe("request_duration_seconds", ctx.timing.total / 1000, labels);
    // Bytes as announced by Content-Length (chunked bodies are not counted: their size is not in
    // the headers the log phase sees).
    const out = bytes(ctx.response.headers.get("content-length"));
    const inb = bytes(ctx.request.headers.get("content-length"));
    if (out > 0) ctx.metrics.increment("response_bytes_total", out, labels);
    if (inb > 0) ctx.metrics.increment("request_bytes_total", inb, labels);
  },
});
