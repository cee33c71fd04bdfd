/**
 * The in-process store's figures on `/metrics`: entries and bytes held against their bounds, and
 * the entries evicted to stay within them. Registered by a worker's WeirMetrics (its own store,
 * when it holds one) and by the primary (the store its workers share).
 */
import type { Registry } from "prom-client";
import type { StoreStats } from "../store/memory-store.js";
import { registerCollector } from "./collector.js";

export function registerStoreMetrics(r: Registry, read: () => StoreStats | null): void {
  const one = (name: string, help: string, type: "gauge" | "counter", pick: (s: StoreStats) => number) =>
    registerCollector(r, name, help, type, "sum", (out) => {
      const s = read();
      if (s !== null) out.push({ labels: {}, value: pick(s) });
    });
  one("weir_store_entries", "Entries in the in-process store (ctx.store and ctx.rateLimit without store.redis).", "gauge", (s) => s.entries);
  one("weir_store_bytes", "Bytes the in-process store holds, as it counts them (2 per character of key and value, 64 per entry).", "gauge", (s) => s.bytes);
  one("weir_store_max_entries", "The in-process store's bound on entries (store.maxEntries).", "gauge", (s) => s.maxEntries);
  one("weir_store_max_bytes", "The in-process store's bound on bytes (store.maxBytes).", "gauge", (s) => s.maxBytes);
  one("weir_store_evictions_total", "Entries the in-process store evicted, least recently used first, to stay within store.maxEntries and store.maxBytes.", "counter", (s) => s.evictions);
}
