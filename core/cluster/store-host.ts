/**
 * The primary's side of the workers' shared store (ipc-store.ts): one MemoryStore for the whole
 * instance, answering each worker's StoreRequest with a StoreReply of the same id. Every operation
 * runs to completion before the next message is read, so an incr or a GCRA step is atomic across
 * workers, and the GCRA clock is the primary's alone. The state outlives any worker.
 */
import { MemoryStore, type StoreStats } from "../store/memory-store.js";
import type { StoreBounds } from "../store/bounded-map.js";
import type { StoreReply, StoreRequest } from "./messages.js";

export class StoreHost {
  private readonly store: MemoryStore;

  constructor(bounds?: StoreBounds) {
    this.store = new MemoryStore(bounds);
  }

  /** The config's store.maxEntries / maxBytes, at start and on every reload. */
  setBounds(bounds: StoreBounds): void {
    this.store.setBounds(bounds);
  }

  stats(): StoreStats {
    return this.store.stats();
  }

  /** Runs one request and sends the answer through `reply` (the asking worker's channel). */
  answer(m: StoreRequest, reply: (r: StoreReply) => void): void {
    let result: unknown;
    try {
      result = this.run(m);
    } catch (err) {
      reply({ weir: "store", id: m.id, error: String((err as Error)?.message ?? err) });
      return;
    }
    Promise.resolve(result).then(
      (ok) => reply({ weir: "store", id: m.id, ok: ok ?? null }),
      (err: Error) => reply({ weir: "store", id: m.id, error: String(err?.message ?? err) }),
    );
  }

  private run(m: StoreRequest): unknown {
    const a = Array.isArray(m.args) ? m.args : [];
    const s = (i: number) => String(a[i] ?? "");
    const n = (i: number) => (typeof a[i] === "number" && Number.isFinite(a[i]) ? (a[i] as number) : 0);
    switch (m.op) {
      case "get": return this.store.get(s(0));
      case "set": return this.store.set(s(0), s(1), n(2));
      // incrSync and the synchronous rateLimit: the step is taken now, in arrival order.
      case "incr": return this.store.incrSync(s(0), n(1), n(2));
      case "delete": return this.store.delete(s(0));
      case "rateLimit": return this.store.rateLimit(s(0), n(1), n(2));
      default: throw new Error(`unknown store operation ${String(m.op)}`);
    }
  }

  async close(): Promise<void> {
    await this.store.close();
  }
}
