/**
 * The state behind `ctx.store` and the rate limiter: strings with TTLs. In-process by default;
 * in the primary for the workers of `workers: N` (core/cluster/ipc-store.ts, shared by every
 * worker of the instance); Redis (shared by every worker and instance) when the config sets
 * `store.redis`.
 * Every method may reject (a Redis outage): callers decide to fail open or closed.
 */
import type { RateLimitDecision } from "./gcra.js";

export interface KeyValueStore {
  get(key: string): Promise<string | null>;
  /** ttlMs 0 = no expiry. */
  set(key: string, value: string, ttlMs: number): Promise<void>;
  /** Adds `by` and returns the new value; the TTL is set when the key is created. */
  incr(key: string, by: number, ttlMs: number): Promise<number>;
  delete(key: string): Promise<void>;
  /**
   * One GCRA step on `key` (core/store/gcra.ts): synchronous in-process, a Promise with Redis
   * (one atomic script) or the primary (one IPC round trip). Rejects when that fails; the caller
   * applies its onStoreError.
   */
  rateLimit(key: string, limit: number, windowMs: number): RateLimitDecision | Promise<RateLimitDecision>;
  close(): Promise<void>;
  /** Only "memory" answers rateLimit synchronously (capabilities.ts relies on it). */
  readonly kind: "memory" | "ipc" | "redis";
}
