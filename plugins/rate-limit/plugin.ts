/**
 * rate-limit: `limit` requests per `window` for each client (`by`), counted with GCRA by the host
 * (`ctx.rateLimit`, a promise: the host counts in-process at once, or with `store.redis` with one
 * atomic Redis script shared by every worker and instance, a Redis outage bounded to ~100 ms and
 * decided by `onStoreError`).
 *
 * Every response carries RateLimit-Limit / -Remaining / -Reset (delta seconds, as in
 * draft-ietf-httpapi-ratelimit-headers); a refusal is 429 with Retry-After and a JSON body.
 */
import { definePlugin, type Context, type RateLimitResult } from "weir/sdk";

interface Config {
  limit: number;
  window: string | number;
  by: string;
  onStoreError: "open" | "closed";
  bucket?: string;
}

interface Compiled {
  limit: number;
  windowMs: number;
  by: "ip" | "consumer" | "route" | "header";
  header: string;
  prefix: string;
  options: { limit: number; windowMs: number; onStoreError: "open" | "closed" };
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const DURATION = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/;
/** The vars key where the decision waits for onResponse: [limit, remaining, resetSeconds]. */
const VAR = "rateLimit";

function toMs(d: string | number): number {
  if (typeof d === "number") return d;
  const m = DURATION.exec(d)!;
  return Math.round(parseFloat(m[1]!) * UNITS[m[2]!]!);
}

// The config is fixed for the life of this isolate (one per route entry): compile it once.
let compiled: Compiled | null = null;
function compile(c: Config): Compiled {
  const windowMs = toMs(c.window);
  const by = c.by.startsWith("header:") ? "header" : (c.by as Compiled["by"]);
  return {
    limit: c.limit, windowMs, by,
    header: by === "header" ? c.by.slice(7).toLowerCase() : "",
    // Entries with the same limit, window and `by` share counters (a global entry counts across
    // routes); `bucket` names a counter explicitly.
    prefix: (c.bucket ?? `${c.by}|${c.limit}|${windowMs}`) + "|",
    options: { limit: c.limit, windowMs, onStoreError: c.onStoreError },
  };
}

function keyFor(c: Compiled, ctx: Context<Config>): string {
  switch (c.by) {
    // ctx.client.ip is the trusted client address: X-Forwarded-For counts only from trustedProxies.
    case "ip": return c.prefix + ctx.client.ip;
    // Anonymous requests fall back to their address, so they cannot share one consumer's quota.
    case "consumer": return c.prefix + (ctx.consumer !== null ? "c:" + ctx.consumer : "ip:" + ctx.client.ip);
    case "route": return c.prefix + ctx.route.name;
    case "header": return c.prefix + (ctx.request.headers.get(c.header) ?? "");
  }
}

function headersFor(v: [number, number, number]): Record<string, string> {
  return { "ratelimit-limit": String(v[0]), "ratelimit-remaining": String(v[1]), "ratelimit-reset": String(v[2]) };
}

function decide(ctx: Context<Config>, d: RateLimitResult): void {
  const v: [number, number, number] = [d.limit, d.remaining, Math.ceil(d.resetMs / 1000)];
  // With several rate-limit entries on one request, the headers tell the tightest one.
  const prev = ctx.vars[VAR] as [number, number, number] | undefined;
  if (prev === undefined || v[1] <= prev[1]) {
    // The most restrictive limit on the route is the one the client is told about. Set from
    // onRequest, the headers are applied when the response comes: no onResponse hook (and no
    // second isolate crossing) per request.
    ctx.vars[VAR] = v;
    const h = ctx.response.headers;
    h.set("ratelimit-limit", String(v[0]));
    h.set("ratelimit-remaining", String(v[1]));
    h.set("ratelimit-reset", String(v[2]));
  }
  if (d.storeError !== undefined) ctx.log.warn("rate-limit store unavailable; onStoreError applied", { policy: ctx.config.onStoreError, error: d.storeError });
  if (!d.allowed) {
    const retry = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
    const h = headersFor(v);
    h["retry-after"] = String(retry);
    ctx.respond(429, { error: d.storeError !== undefined ? "rate limit store unavailable" : "too many requests", retryAfter: retry, requestId: ctx.requestId }, h);
  }
}

export default definePlugin<Config>({
  name: "rate-limit",
  version: "1.0.0",
  permissions: { store: true },
  configSchema: {
    type: "object",
    properties: {
      limit: { type: "integer", minimum: 1, description: "requests per window (also the largest burst)" },
      window: {
        anyOf: [{ type: "integer", minimum: 1 }, { type: "string", pattern: "^[0-9]+(\\.[0-9]+)?(ms|s|m|h)$" }],
        description: 'a duration: "1s", "1m", "1h" or milliseconds',
      },
      by: { type: "string", pattern: "^(ip|consumer|route|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$", description: "ip | consumer | route | header:NAME" },
      onStoreError: { enum: ["open", "closed"], default: "open" },
      bucket: { type: "string", minLength: 1, maxLength: 200, description: "name of the counter; entries with the same bucket share it" },
    },
    required: ["limit", "window", "by"],
    additionalProperties: false,
  },
  onRequest(ctx) {
    const c = (compiled ??= compile(ctx.config));
    const r = ctx.rateLimit(keyFor(c, ctx), c.options);
    if (typeof (r as Promise<RateLimitResult>).then === "function") return (r as Promise<RateLimitResult>).then((d) => decide(ctx, d));
    decide(ctx, r as RateLimitResult);
  },
});
