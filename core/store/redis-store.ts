/**
 * The Redis KeyValueStore (ioredis). Bounded on purpose: with ioredis's default options a
 * command waits ~10 s while Redis is down; with no offline queue, no per-request retries and a
 * short command timeout it fails in about a millisecond, so an outage costs a request at most
 * `commandTimeoutMs`, and the caller's fail-open/closed policy decides the rest.
 */
import { Redis } from "ioredis";
import type { KeyValueStore } from "./key-value-store.js";
import { decisionFromReply, GCRA_LUA, type RateLimitDecision } from "./gcra.js";

const INCR_WITH_TTL = `
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v == tonumber(ARGV[1]) and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v`;

export class RedisStore implements KeyValueStore {
  readonly kind = "redis" as const;
  readonly client: Redis;
  private readonly onError: ((err: Error) => void) | undefined;

  constructor(url: string, options: { commandTimeoutMs?: number; onError?: (err: Error) => void } = {}) {
    this.client = new Redis(url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 100,
      connectTimeout: 1000,
      // Keep trying to reconnect in the background, never faster than every 50 ms nor slower than 1 s.
      retryStrategy: (times) => Math.min(50 * times, 1000),
      lazyConnect: false,
    });
    this.client.defineCommand("weirIncrTtl", { numberOfKeys: 1, lua: INCR_WITH_TTL });
    this.client.defineCommand("weirGcra", { numberOfKeys: 1, lua: GCRA_LUA });
    // ioredis emits 'error' for every failed reconnect; without a listener Node would crash.
    this.client.on("error", (err) => options.onError?.(err));
    this.onError = options.onError;
  }

  async get(key: string): Promise<string | null> {
    return this.client.get(key);
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    if (ttlMs > 0) await this.client.set(key, value, "PX", ttlMs);
    else await this.client.set(key, value);
  }

  async incr(key: string, by: number, ttlMs: number): Promise<number> {
    const c = this.client as unknown as { weirIncrTtl(key: string, by: number, ttl: number): Promise<number> };
    return Number(await c.weirIncrTtl(key, by, ttlMs));
  }

  async delete(key: string): Promise<void> {
    await this.client.del(key);
  }

  /** One atomic GCRA step on Redis's clock (core/store/gcra.ts); rejects within commandTimeoutMs. */
  async rateLimit(key: string, limit: number, windowMs: number): Promise<RateLimitDecision> {
    const c = this.client as unknown as { weirGcra(key: string, limit: number, windowMs: number): Promise<unknown> };
    try {
      return decisionFromReply(await c.weirGcra(key, limit, windowMs), limit);
    } catch (err) {
      this.commandFailed(err as Error);
      throw err;
    }
  }

  /** Command failures reach the log at most once a second (an outage fails every request). */
  private lastFailureLog = 0;
  private commandFailed(err: Error): void {
    const now = Date.now();
    if (now - this.lastFailureLog < 1000) return;
    this.lastFailureLog = now;
    this.onError?.(err);
  }

  async close(): Promise<void> {
    this.client.disconnect();
  }
}
