/**
 * The in-process KeyValueStore: one BoundedMap for `ctx.store` values and `ctx.rateLimit` counts
 * alike, bounded by `store.maxEntries` and `store.maxBytes` (least recently used evicted first,
 * counted), with expiry times checked on read and swept every few seconds.
 */
import type { KeyValueStore } from "./key-value-store.js";
import { LocalGcra, type RateLimitDecision } from "./gcra.js";
import { BoundedMap, STORE_DEFAULTS, type StoreBounds } from "./bounded-map.js";

/** What the metrics show of an in-process store. */
export interface StoreStats { entries: number; bytes: number; evictions: number; maxEntries: number; maxBytes: number }

export class MemoryStore implements KeyValueStore {
  readonly kind = "memory" as const;
  private readonly items: BoundedMap;
  private readonly sweeper: NodeJS.Timeout;
  private readonly gcra: LocalGcra;

  constructor(bounds: StoreBounds = STORE_DEFAULTS, sweepEveryMs = 5000, private readonly clock: () => number = Date.now) {
    this.items = new BoundedMap(bounds, clock);
    this.gcra = new LocalGcra(sweepEveryMs, clock, this.items);
    this.sweeper = setInterval(() => this.items.sweep(), sweepEveryMs).unref();
  }

  /** New bounds (a reload): what is over them is evicted at once. */
  setBounds(bounds: StoreBounds): void {
    this.items.setBounds(bounds);
  }

  stats(): StoreStats {
    const { maxEntries, maxBytes } = this.items.limits;
    return { entries: this.items.size, bytes: this.items.bytes, evictions: this.items.evictions, maxEntries, maxBytes };
  }

  async get(key: string): Promise<string | null> {
    return this.items.get(key)?.value ?? null;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.items.set(key, value, ttlMs > 0 ? this.clock() + ttlMs : 0);
  }

  async incr(key: string, by: number, ttlMs: number): Promise<number> {
    return this.incrSync(key, by, ttlMs);
  }

  /** Synchronous increment, for callers on the request path that must not yield. */
  incrSync(key: string, by: number, ttlMs: number): number {
    const item = this.items.get(key);
    if (!item) {
      this.items.set(key, String(by), ttlMs > 0 ? this.clock() + ttlMs : 0);
      return by;
    }
    const n = (Number(item.value) || 0) + by;
    this.items.set(key, String(n), item.expiresAt);
    return n;
  }

  async delete(key: string): Promise<void> {
    this.items.delete(key);
  }

  /** Synchronous on purpose: ctx.rateLimit stays on the sandbox's synchronous path (a few µs). */
  rateLimit(key: string, limit: number, windowMs: number): RateLimitDecision {
    return this.gcra.take(key, limit, windowMs);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.items.clear();
  }
}
