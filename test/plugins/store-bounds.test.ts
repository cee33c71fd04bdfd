/**
 * The in-process store (ctx.store and ctx.rateLimit without store.redis) is bounded by entries and
 * bytes: past either bound the least recently used entries are evicted and counted, so a plugin
 * writing random keys costs at most the bound. The same store serves the workers of `workers: N`
 * from the primary.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { StoreHost } from "../../core/cluster/store-host.js";
import { entryCost, STORE_DEFAULTS } from "../../core/store/bounded-map.js";
import { MemoryStore } from "../../core/store/memory-store.js";
import { scrape } from "../ops/support.js";
import { fixturePath } from "../support/fixtures.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";

const Store = suite("the in-process store's bounds");

Store("past maxEntries the least recently used entry is evicted, and counted", async () => {
  const s = new MemoryStore({ maxEntries: 3, maxBytes: 1 << 20 });
  try {
    for (const k of ["a", "b", "c"]) await s.set(k, k, 0);
    assert.is(await s.get("a"), "a"); // a is now the most recently used
    await s.set("d", "d", 0);
    assert.is(await s.get("b"), null, "b was the least recently used");
    assert.equal(await Promise.all(["a", "c", "d"].map((k) => s.get(k))), ["a", "c", "d"]);
    assert.is(s.stats().entries, 3);
    assert.is(s.stats().evictions, 1);
    await s.incr("c", 1, 0); // an increment is a use too
    await s.set("e", "e", 0);
    assert.is(await s.get("a"), null);
    assert.is(await s.get("c"), "1");
  } finally { await s.close(); }
});

Store("past maxBytes entries are evicted until the store fits, counting two bytes per character and 64 per entry", async () => {
  const big = "x".repeat(1000);
  const cost = entryCost("k0", big);
  const s = new MemoryStore({ maxEntries: 1000, maxBytes: cost * 4 });
  try {
    for (let i = 0; i < 10; i++) await s.set(`k${i}`, big, 0);
    const st = s.stats();
    assert.is(st.entries, 4);
    assert.ok(st.bytes <= cost * 4, String(st.bytes));
    assert.is(st.evictions, 6);
    assert.is(await s.get("k9"), big);
    assert.is(await s.get("k5"), null);
    // A value larger than the whole store is not kept, and takes nothing else with it beyond room.
    await s.set("huge", "y".repeat(cost * 4), 0);
    assert.is(await s.get("huge"), null);
  } finally { await s.close(); }
});

Store("rate-limit counts share the bounds with ctx.store values", async () => {
  const s = new MemoryStore({ maxEntries: 5, maxBytes: 1 << 20 });
  try {
    for (let i = 0; i < 20; i++) assert.ok(s.rateLimit(`rl:${i}`, 10, 60_000).allowed);
    assert.is(s.stats().entries, 5);
    assert.is(s.stats().evictions, 15);
    // The most recent keys keep their count.
    assert.is(s.rateLimit("rl:19", 10, 60_000).remaining, 8);
  } finally { await s.close(); }
});

Store("expired entries make room before live ones are evicted, and are not counted as evictions", async () => {
  let now = 1_000_000;
  const s = new MemoryStore({ maxEntries: 2, maxBytes: 1 << 20 }, 60_000, () => now);
  try {
    await s.set("short", "1", 10);
    await s.set("long", "1", 0);
    now += 20;
    await s.set("new", "1", 0);
    assert.is(s.stats().evictions, 0);
    assert.is(await s.get("long"), "1");
  } finally { await s.close(); }
});

Store("the defaults are 100,000 entries and 64 MiB", () => {
  assert.equal(STORE_DEFAULTS, { maxEntries: 100_000, maxBytes: 64 * 1024 * 1024 });
  const s = new MemoryStore();
  try { assert.equal([s.stats().maxEntries, s.stats().maxBytes], [100_000, 67_108_864]); } finally { void s.close(); }
});

Store("the primary's store for workers is bounded the same way", async () => {
  const host = new StoreHost({ maxEntries: 2, maxBytes: 1 << 20 });
  try {
    for (let i = 0; i < 5; i++) await new Promise((r) => host.answer({ weir: "store", id: i, op: "set", args: [`k${i}`, "v", 0] }, r));
    assert.is(host.stats().entries, 2);
    assert.is(host.stats().evictions, 3);
    host.setBounds({ maxEntries: 1, maxBytes: 1 << 20 });
    assert.is(host.stats().entries, 1);
  } finally { await host.close(); }
});

Store.run();

interface Ctx { up: TestUpstream; weir: TestWeir }
const Weir = suite<Ctx>("the store's bounds through Weir");

const config = (up: string, maxEntries: number) => ({
  store: { maxEntries },
  routes: [
    { name: "counter", match: { path: "/count" }, upstream: up, plugins: [{ use: fixturePath("plugins", "store-counter.ts"), permissions: { store: true } }] },
    { name: "limited", match: { path: "/limited" }, upstream: up, plugins: [{ use: "rate-limit", config: { limit: 100, window: "1m", by: "header:x-key" } }] },
  ],
});

Weir.before(async (ctx) => {
  ctx.up = await startUpstream();
  ctx.weir = await startWeir(config(ctx.up.url, 50));
});
Weir.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

async function hit(weir: TestWeir, path: string, key: string): Promise<void> {
  const res = await fetch(weir.url + path, { headers: { "x-key": key } });
  await res.arrayBuffer();
  assert.is(res.status, 200);
}

Weir("plugins writing random keys (ctx.store, rate-limit) hold at most store.maxEntries; the rest is evicted and counted", async ({ weir }) => {
  for (let i = 0; i < 80; i++) { await hit(weir, "/count", `s${i}`); await hit(weir, "/limited", `r${i}`); }
  const e = (await scrape(weir.admin)).exposition;
  assert.is(e.value("weir_store_entries"), 50);
  assert.is(e.value("weir_store_max_entries"), 50);
  assert.is(e.value("weir_store_evictions_total"), 160 - 50);
  assert.ok(e.value("weir_store_bytes") > 0);
});

Weir("a reload applies new bounds at once", async ({ weir, up }) => {
  weir.write(config(up.url, 10));
  await weir.rt.reload();
  const e = (await scrape(weir.admin)).exposition;
  assert.is(e.value("weir_store_entries"), 10);
  assert.is(e.value("weir_store_max_entries"), 10);
});

Weir.run();
