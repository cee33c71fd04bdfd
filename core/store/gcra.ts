/**
 * GCRA (generic cell rate algorithm), the rate limiter behind `ctx.rateLimit`.
 *
 * Why GCRA and not a fixed or sliding window: it keeps one number per key (the "theoretical
 * arrival time", TAT), has no window boundary where a client can send 2x the limit (a fixed
 * window's flaw), needs no list of timestamps (a sliding log's cost), and gives an exact
 * Retry-After. `limit` requests per `windowMs` means one request every T = windowMs / limit, with
 * a burst of up to `limit` at once.
 *
 * For a request at `now`: tat = max(stored, now); the request is allowed when
 * tat + T - windowMs <= now, and the stored TAT becomes tat + T. See
 * https://brandur.org/rate-limiting#gcra and ATM Forum TM 4.1 (the virtual scheduling algorithm).
 *
 * Two implementations share the arithmetic: LocalGcra (in-process, synchronous: a sandboxed plugin
 * calls it through a synchronous host call, a few µs) and GCRA_LUA (Redis: one atomic script that
 * reads Redis `TIME`, so instances never race between a read and a write and never disagree about
 * the clock).
 */
import type { RateLimitResult } from "../../sdk/index.js";
import { BoundedMap, STORE_DEFAULTS } from "./bounded-map.js";

/** What the limiter decided: the SDK's RateLimitResult, which is what the plugin receives. */
export type RateLimitDecision = RateLimitResult;

/** Floating-point slack: (W - T) / T must floor to limit - 1, not limit - 2. */
const EPSILON = 1e-9;

/** One GCRA step. Returns the decision and the TAT to store (null: refused, store nothing). */
export function gcraStep(stored: number, now: number, limit: number, windowMs: number): { decision: RateLimitDecision; tat: number | null } {
  const interval = windowMs / limit;
  const tat = stored > now ? stored : now;
  const next = tat + interval;
  const allowAt = next - windowMs;
  if (now < allowAt) {
    return { decision: { allowed: false, limit, remaining: 0, resetMs: tat - now, retryAfterMs: allowAt - now }, tat: null };
  }
  const remaining = Math.floor((windowMs - (next - now)) / interval + EPSILON);
  return { decision: { allowed: true, limit, remaining: remaining < 0 ? 0 : remaining, resetMs: next - now, retryAfterMs: 0 }, tat: next };
}

/**
 * In-process GCRA: key -> TAT in a BoundedMap (the in-process store's own, when MemoryStore makes
 * it, so rate-limit keys count against the store's bounds). A TAT in the past means a full quota,
 * so it is the entry's expiry time: swept, or evicted first when the map is full.
 */
export class LocalGcra {
  private readonly sweeper: NodeJS.Timeout | null;
  private readonly tats: BoundedMap;

  /** `tats`: the map to keep TATs in (then it is the owner's to sweep); else one of its own. */
  constructor(sweepEveryMs = 10_000, private readonly clock: () => number = Date.now, tats?: BoundedMap) {
    this.tats = tats ?? new BoundedMap(STORE_DEFAULTS, clock);
    this.sweeper = tats === undefined ? setInterval(() => this.sweep(), sweepEveryMs).unref() : null;
  }

  take(key: string, limit: number, windowMs: number): RateLimitDecision {
    const now = this.clock();
    const stored = this.tats.get(key, now);
    const { decision, tat } = gcraStep(stored === undefined ? 0 : Number(stored.value), now, limit, windowMs);
    if (tat !== null) this.tats.set(key, String(tat), tat);
    return decision;
  }

  get size(): number { return this.tats.size; }

  /** A TAT in the past means a full quota: the key can go. */
  sweep(): void {
    this.tats.sweep(this.clock());
  }

  close(): void {
    if (this.sweeper !== null) clearInterval(this.sweeper);
    this.tats.clear();
  }
}

/**
 * The same step as one Redis script: KEYS[1] the key, ARGV limit and windowMs. Redis runs a script
 * atomically, so concurrent requests from every instance are serialised on the key; `TIME` is the
 * one clock they all share. Effects replication (default since Redis 5) makes the non-deterministic
 * TIME safe with replicas. Returns {allowed 0|1, remaining, resetMs, retryAfterMs} (as strings for
 * the fractional values: Lua numbers returned to Redis are truncated to integers).
 */
export const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local interval = window / limit
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local nextTat = tat + interval
local allowAt = nextTat - window
if now < allowAt then
  return {0, 0, string.format('%.3f', tat - now), string.format('%.3f', allowAt - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', nextTat), 'PX', math.ceil(nextTat - now))
local remaining = math.floor((window - (nextTat - now)) / interval + 1e-9)
if remaining < 0 then remaining = 0 end
return {1, remaining, string.format('%.3f', nextTat - now), '0'}
`;

/** Reads GCRA_LUA's reply. */
export function decisionFromReply(reply: unknown, limit: number): RateLimitDecision {
  const r = reply as [number, number, string, string];
  return { allowed: Number(r[0]) === 1, limit, remaining: Number(r[1]), resetMs: Number(r[2]), retryAfterMs: Number(r[3]) };
}

/** The decision when the store is down: `open` lets the request through, `closed` refuses it. */
export function storeDownDecision(limit: number, windowMs: number, policy: "open" | "closed", error: string): RateLimitDecision {
  return policy === "closed"
    ? { allowed: false, limit, remaining: 0, resetMs: windowMs, retryAfterMs: 1000, storeError: error }
    : { allowed: true, limit, remaining: limit, resetMs: 0, retryAfterMs: 0, storeError: error };
}

/**
 * Counters of rate-limit store failures, process-wide, for logs and the metrics owner
 * (`weir_ratelimit_store_errors_total{policy}`): read with `rateLimitStats()`.
 */
const stats = { storeErrors: 0, failedOpen: 0, failedClosed: 0, lastError: "", lastErrorAt: 0 };
export function recordStoreError(policy: "open" | "closed", error: string): void {
  stats.storeErrors++;
  if (policy === "open") stats.failedOpen++; else stats.failedClosed++;
  stats.lastError = error;
  stats.lastErrorAt = Date.now();
}
export function rateLimitStats(): Readonly<typeof stats> {
  return { ...stats };
}
