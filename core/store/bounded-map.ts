/**
 * The table behind the in-process store (memory-store.ts): string values with expiry times,
 * bounded by entries and by bytes. When a write would go past either bound the least recently
 * used entries are evicted (as Redis does with `maxmemory-policy allkeys-lru`), so plugins writing
 * random keys (`ctx.store`, `ctx.rateLimit`) cost at most the bound, never the process.
 *
 * Recency is a Map's insertion order: a read or a write moves its entry to the end, and eviction
 * takes from the front. An entry's cost counts two bytes per character of key and value (V8's
 * worst case) and ENTRY_OVERHEAD for the Map slot and the entry object.
 */

export interface StoreBounds {
  /** Entries held at most. */
  maxEntries: number;
  /** Bytes held at most, as counted by entryCost. */
  maxBytes: number;
}

/** The defaults of `store.maxEntries` and `store.maxBytes`. */
export const STORE_DEFAULTS: Readonly<StoreBounds> = { maxEntries: 100_000, maxBytes: 64 * 1024 * 1024 };

export const ENTRY_OVERHEAD = 64;

/** The bounds a config's `store:` sets (its defaults for what it leaves out). */
export function storeBounds(store: { maxEntries?: number; maxBytes?: number } | undefined): StoreBounds {
  return { maxEntries: store?.maxEntries ?? STORE_DEFAULTS.maxEntries, maxBytes: store?.maxBytes ?? STORE_DEFAULTS.maxBytes };
}

export const entryCost = (key: string, value: string): number => 2 * (key.length + value.length) + ENTRY_OVERHEAD;

export interface Entry { value: string; expiresAt: number; size: number }

export class BoundedMap {
  private readonly map = new Map<string, Entry>();
  private used = 0;
  /** Entries evicted to stay within the bounds (not those that expired). */
  evictions = 0;

  constructor(private bounds: StoreBounds = STORE_DEFAULTS, private readonly clock: () => number = Date.now) {}

  get size(): number { return this.map.size; }
  get bytes(): number { return this.used; }
  get limits(): Readonly<StoreBounds> { return this.bounds; }

  /** New bounds (a reload); what is over them now is evicted at once. */
  setBounds(bounds: StoreBounds): void {
    this.bounds = bounds;
    this.shrink();
  }

  /** The live entry for `key`, now the most recently used; an expired one is dropped. */
  get(key: string, now = this.clock()): Entry | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    this.map.delete(key);
    if (e.expiresAt !== 0 && e.expiresAt <= now) { this.used -= e.size; return undefined; }
    this.map.set(key, e);
    return e;
  }

  /** Writes `key` (expiresAt 0: never), the most recently used, then evicts what is over the bounds. */
  set(key: string, value: string, expiresAt: number): void {
    const old = this.map.get(key);
    if (old !== undefined) { this.used -= old.size; this.map.delete(key); }
    const size = entryCost(key, value);
    this.map.set(key, { value, expiresAt, size });
    this.used += size;
    this.shrink();
  }

  delete(key: string): void {
    const e = this.map.get(key);
    if (e === undefined) return;
    this.map.delete(key);
    this.used -= e.size;
  }

  /** Drops every entry whose time has come. */
  sweep(now = this.clock()): void {
    for (const [k, e] of this.map) if (e.expiresAt !== 0 && e.expiresAt <= now) { this.map.delete(k); this.used -= e.size; }
  }

  clear(): void {
    this.map.clear();
    this.used = 0;
  }

  private shrink(): void {
    const { maxEntries, maxBytes } = this.bounds;
    if (this.map.size <= maxEntries && this.used <= maxBytes) return;
    const now = this.clock();
    for (const [k, e] of this.map) {
      if (this.map.size <= maxEntries && this.used <= maxBytes) break;
      this.map.delete(k);
      this.used -= e.size;
      // An entry past its time was going anyway: only a live one counts as evicted.
      if (e.expiresAt === 0 || e.expiresAt > now) this.evictions++;
    }
  }
}
