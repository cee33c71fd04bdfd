/**
 * The state behind `ctx.store` and the rate limiter: strings with TTLs. In-process by default;
 * Redis (shared by every worker and instance) when the config sets `store.redis`.
 * Every method may reject (a Redis outage): callers decide to fail open or closed.
 */
export interface KeyValueStore {
  get(key: string): Promise<string | null>;
  /** ttlMs 0 = no expiry. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Adds `by` and returns the new value; the TTL is set when the key is created. */
  incr(key: string, by: number, ttlMs: number): Promise<number>;
  delete(key: string): Promise<void>;
  close(): Promise<void>;
  readonly kind: "memory" | "redis";
}
