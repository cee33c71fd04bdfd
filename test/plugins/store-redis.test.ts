/**
 * ctx.store with `store.redis`: the counter is shared by every Weir instance on the same Redis,
 * keys are namespaced per plugin, and with Redis unreachable a store call fails fast with an error
 * the plugin can catch while the request completes. Needs the Redis at 127.0.0.1:6379 (fails,
 * never skips, without it).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { request } from "undici";
import type { RedisStore } from "../../core/store/redis-store.js";
import { requireRedis } from "../builtins/support.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, tempDir, type TestWeir } from "../support/weir.js";
import { pluginFixture } from "./support.js";

const REDIS = "redis://127.0.0.1:6379";

/** A copy of store-counter.ts named `name` (a second plugin with the same code and key names). */
function counterNamed(name: string): string {
  const file = join(tempDir(), `${name}.ts`);
  writeFileSync(file, readFileSync(pluginFixture("store-counter.ts"), "utf8").replace('name: "store-counter"', `name: "${name}"`));
  return file;
}

async function redisReady(w: TestWeir): Promise<void> {
  const store = w.rt.store as RedisStore;
  for (let i = 0; i < 100 && store.client.status !== "ready"; i++) await sleep(20);
  assert.is(store.client.status, "ready", "Weir's Redis client did not connect");
}

async function count(url: string, key: string, path = "/a/x"): Promise<{ status: number; count?: string; error?: string; ms: number }> {
  const t0 = performance.now();
  const res = await request(url + path, { headers: { "x-key": key } });
  await res.body.dump();
  return { status: res.statusCode, count: res.headers["x-count"] as string | undefined, error: res.headers["x-store-error"] as string | undefined, ms: performance.now() - t0 };
}

const Shared = suite<{ up: TestUpstream; a: TestWeir; b: TestWeir; redis: Redis; key: string }>("ctx.store on Redis, shared by two instances");

Shared.before(async (ctx) => {
  await requireRedis(REDIS);
  ctx.up = await startUpstream();
  const other = counterNamed("store-counter-other");
  const config = {
    store: { redis: REDIS },
    routes: [
      { match: { path: "/a" }, upstream: ctx.up.url, plugins: [{ use: pluginFixture("store-counter.ts"), permissions: { store: true } }] },
      { match: { path: "/b" }, upstream: ctx.up.url, plugins: [{ use: other, permissions: { store: true } }] },
    ],
  };
  ctx.a = await startWeir(config as never);
  ctx.b = await startWeir(config as never);
  await redisReady(ctx.a); await redisReady(ctx.b);
  ctx.redis = new Redis(REDIS, { maxRetriesPerRequest: 0 });
  ctx.key = `visits-${randomUUID()}`;
});
Shared.after(async (ctx) => {
  await ctx.redis.del(`weir:store-counter:${ctx.key}`, `weir:store-counter-other:${ctx.key}`);
  ctx.redis.disconnect();
  await ctx.a.stop(); await ctx.b.stop(); await ctx.up.close();
});

Shared("two Weir instances count on the same key", async ({ a, b, key }) => {
  const seen: string[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await count(i % 2 ? b.url : a.url, key);
    assert.is(r.status, 200);
    assert.is(r.error, undefined);
    seen.push(r.count!);
  }
  assert.equal(seen, ["1", "2", "3", "4", "5", "6"]);
});

Shared("concurrent increments through both instances lose nothing", async ({ a, b, key }) => {
  const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => count(i % 2 ? b.url : a.url, key)));
  const counts = rs.map((r) => Number(r.count)).sort((x, y) => x - y);
  assert.equal(counts, Array.from({ length: 40 }, (_, i) => 7 + i));
});

Shared("keys are namespaced per plugin: another plugin's key of the same name is separate", async ({ a, b, key, redis }) => {
  assert.is((await count(a.url, key, "/b/x")).count, "1");
  assert.is((await count(b.url, key, "/b/x")).count, "2");
  assert.is((await count(a.url, key)).count, "47");
  // What Redis holds: one key per plugin, under its name.
  assert.is(await redis.get(`weir:store-counter:${key}`), "47");
  assert.is(await redis.get(`weir:store-counter-other:${key}`), "2");
  assert.is(await redis.get(key), null, "no un-namespaced key");
  const ttl = await redis.pttl(`weir:store-counter:${key}`);
  assert.ok(ttl > 0 && ttl <= 60_000, `the TTL given at creation (pttl ${ttl})`);
});

Shared.run();

const Down = suite<{ up: TestUpstream; weir: TestWeir }>("ctx.store with Redis unreachable");

/** A local port with nothing listening on it (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

Down.before(async (ctx) => {
  ctx.up = await startUpstream();
  ctx.weir = await startWeir({
    store: { redis: `redis://127.0.0.1:${await closedPort()}` },
    routes: [{ match: { path: "/a" }, upstream: ctx.up.url, plugins: [{ use: pluginFixture("store-counter.ts"), permissions: { store: true } }] }],
  } as never);
});
Down.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

Down("a store call fails fast with an error the plugin catches, and the request completes", async ({ weir, up }) => {
  const before = up.seen.length;
  const rs = [];
  for (let i = 0; i < 10; i++) rs.push(await count(weir.url, "k"));
  for (const r of rs) {
    assert.is(r.status, 200);
    assert.is(r.count, undefined);
    assert.ok(r.error && r.error.length > 0, "the plugin caught an error");
    assert.match(r.error!, /^ctx\.store: the store is unavailable/, "an error that says what happened");
    assert.ok(r.ms < 200, `a request took ${Math.round(r.ms)} ms with Redis down`);
  }
  assert.is(up.seen.length, before + 10, "every request reached the upstream");
  console.log(`    store error seen by the plugin: ${rs[0]!.error}; slowest request ${Math.round(Math.max(...rs.map((r) => r.ms)))} ms`);
});

Down("concurrent requests with Redis down all complete quickly", async ({ weir }) => {
  const t0 = performance.now();
  const rs = await Promise.all(Array.from({ length: 30 }, () => count(weir.url, "k")));
  assert.ok(rs.every((r) => r.status === 200 && r.error !== undefined));
  assert.ok(performance.now() - t0 < 1000, `30 concurrent requests took ${Math.round(performance.now() - t0)} ms`);
});

Down.run();
