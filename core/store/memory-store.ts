/** The in-process KeyValueStore: a Map with expiry times, swept lazily and every few seconds. */
import type { KeyValueStore } from "./key-value-store.js";
import { LocalGcra, type RateLimitDecision } from "./gcra.js";

interface Item { value: string; expiresAt: number }

export class MemoryStore implements KeyValueStore {
  readonly kind = "memory" as const;
  private readonly items = new Map<string, Item>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly gcra = new LocalGcra();

  constructor(sweepEveryMs = 5000) {
    this.sweeper = setInterval(() => this.sweep(), sweepEveryMs).unref();
  }

  private live(key: string, now = Date.now()): Item | undefined {
    const item = this.items.get(key);
    if (item && item.expiresAt !== 0 && item.expiresAt <= now) { this.items.delete(key); return undefined; }
    return item;
  }

  async get(key: string): Promise<string | null> {
    return this.live(key)?.value ?? null;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    this.items.set(key, { value, expiresAt: ttlMs > 0 ? Date.now() + ttlMs : 0 });
  }

  async incr(key: string, by: number, ttlMs: number): Promise<number> {
    return this.incrSync(key, by, ttlMs);
  }

  /** Synchronous increment, for callers on the request path that must not yield. */
  incrSync(key: string, by: number, ttlMs: number): number {
    const item = this.live(key);
    if (!item) {
      this.items.set(key, { value: String(by), expiresAt: ttlMs > 0 ? Date.now() + ttlMs : 0 });
      return by;
    }
    const n = (Number(item.value) || 0) + by;
    item.value = String(n);
    return n;
  }

  async delete(key: string): Promise<void> {
    this.items.delete(key);
  }

  /** Synchronous on purpose: ctx.rateLimit stays on the sandbox's synchronous path (a few µs). */
  rateLimit(key: string, limit: number, windowMs: number): RateLimitDecision {
    return this.gcra.take(key, limit, windowMs);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [k, item] of this.items) if (item.expiresAt !== 0 && item.expiresAt <= now) this.items.delete(k);
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.items.clear();
    this.gcra.close();
  }
}
