/**
 * The store of a worker of `workers: N` without `store.redis`: every operation goes to the primary
 * over the cluster IPC channel, where one MemoryStore (store-host.ts) holds the state of every
 * worker. So rate limits and `ctx.store` count once per instance, as nginx's shared limit_req
 * zones do, and a worker that dies and is restarted finds its counts where it left them.
 *
 * Bounded like the Redis store (redis-store.ts): a call the primary has not answered within
 * `timeoutMs` rejects, so a stalled primary costs a request at most that, and the caller's
 * fail-open/closed policy (rate-limit's onStoreError) decides the rest. Its kind is not "memory",
 * so ctx.rateLimit takes the sandbox's async path (capabilities.ts).
 */
import { ErrorCodes, WeirError } from "../errors.js";
import type { KeyValueStore } from "../store/key-value-store.js";
import type { RateLimitDecision } from "../store/gcra.js";
import type { StoreOp, StoreReply, StoreRequest } from "./messages.js";

/** The same bound as the Redis store's command timeout: a store that is down never stalls a request past ~100 ms. */
const DEFAULT_TIMEOUT_MS = 100;

interface Pending { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }

/** The end of the IPC channel a worker talks through: `process` in a cluster worker. */
export interface IpcChannel {
  readonly connected: boolean;
  /** process.send's shape: with a callback, a failed send is reported there. */
  send(message: StoreRequest, sendHandle?: undefined, options?: undefined, callback?: (err: Error | null) => void): unknown;
  on(event: "message", listener: (m: unknown) => void): unknown;
  off(event: "message", listener: (m: unknown) => void): unknown;
}

export class IpcStore implements KeyValueStore {
  readonly kind = "ipc" as const;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly onMessage = (m: unknown) => this.answered(m);

  constructor(private readonly channel: IpcChannel = process as unknown as IpcChannel, private readonly timeoutMs = DEFAULT_TIMEOUT_MS) {
    channel.on("message", this.onMessage);
  }

  async get(key: string): Promise<string | null> {
    return (await this.call("get", [key])) as string | null;
  }

  async set(key: string, value: string, ttlMs: number): Promise<void> {
    await this.call("set", [key, value, ttlMs]);
  }

  async incr(key: string, by: number, ttlMs: number): Promise<number> {
    return (await this.call("incr", [key, by, ttlMs])) as number;
  }

  async delete(key: string): Promise<void> {
    await this.call("delete", [key]);
  }

  /** One GCRA step in the primary, on the primary's clock: every worker shares the key's TAT. */
  rateLimit(key: string, limit: number, windowMs: number): Promise<RateLimitDecision> {
    return this.call("rateLimit", [key, limit, windowMs]) as Promise<RateLimitDecision>;
  }

  private call(op: StoreOp, args: (string | number)[]): Promise<unknown> {
    if (!this.channel.connected) return Promise.reject(unavailable("the primary process is gone"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(unavailable(`the primary process did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      try {
        // With a callback a failed send (the primary just died: EPIPE) is reported here, not as an
        // 'error' event that would crash this worker.
        this.channel.send({ weir: "store", id, op, args }, undefined, undefined, (err: Error | null) => {
          if (err && this.pending.delete(id)) {
            clearTimeout(timer);
            reject(unavailable(`the primary process could not be reached (${err.message})`));
          }
        });
      } catch (err) {
        clearTimeout(timer);
        this.pending.delete(id);
        reject(unavailable(`the primary process could not be reached (${(err as Error).message})`));
      }
    });
  }

  private answered(m: unknown): void {
    const r = m as StoreReply;
    if (typeof m !== "object" || m === null || r.weir !== "store") return;
    const p = this.pending.get(r.id);
    // Answered after its timeout: the caller has already applied its policy.
    if (!p) return;
    this.pending.delete(r.id);
    clearTimeout(p.timer);
    if (r.error !== undefined) p.reject(unavailable(r.error));
    else p.resolve(r.ok ?? null);
  }

  async close(): Promise<void> {
    this.channel.off("message", this.onMessage);
    for (const p of this.pending.values()) { clearTimeout(p.timer); p.reject(unavailable("the store was closed")); }
    this.pending.clear();
  }
}

function unavailable(message: string): WeirError {
  return new WeirError(ErrorCodes.STORE_UNAVAILABLE, `shared store: ${message}`, 503);
}
