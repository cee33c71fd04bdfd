/**
 * The onLog phase runs off the request path: queued calls cross into the isolate in batches, on
 * the isolate's own thread. Every call runs exactly once while the queue has room, one throwing
 * call of a batch fails alone, and a plugin whose onLog cannot keep up fills its bounded queue
 * (10,000 calls): the rest is dropped and counted in `logDropped`, while every response has
 * already been sent and the process stays within bounded memory.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { randomUUID } from "node:crypto";
import { Pool, request } from "undici";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";
import { adminPlugins, pluginFixture, poll, type PluginView } from "./support.js";

type View = PluginView & { logDropped: number };
const viewOf = async (weir: TestWeir, name: string) => (await adminPlugins(weir.admin)).find((p) => p.name === name) as View;

/** The `seq` label and value of every series of weir_log_counter_logged for one run. */
async function loggedSeqs(weir: TestWeir, run: string): Promise<Map<string, number>> {
  const text = await (await request(`${weir.admin}/metrics`)).body.text();
  const out = new Map<string, number>();
  const re = new RegExp(`^weir_log_counter_logged\\{run="${run}",seq="(\\d+)"\\} (\\d+)$`, "gm");
  for (const m of text.matchAll(re)) out.set(m[1]!, Number(m[2]));
  return out;
}

/** `n` requests at once, each with `x-run` and `x-seq`; `extra(i)` adds headers. Returns the statuses. */
async function burst(pool: Pool, n: number, run: string, extra: (i: number) => Record<string, string> = () => ({})): Promise<number[]> {
  return Promise.all(Array.from({ length: n }, async (_, i) => {
    const res = await pool.request({ path: `/b/${i}`, method: "GET", headers: { "x-run": run, "x-seq": String(i), ...extra(i) } });
    await res.body.dump();
    return res.statusCode;
  }));
}

const Batches = suite<{ up: TestUpstream; weir: TestWeir; pool: Pool }>("onLog batches");

Batches.before(async (ctx) => {
  ctx.up = await startUpstream();
  ctx.weir = await startWeir({ routes: [{ match: { path: "/" }, upstream: ctx.up.url, plugins: [{ use: pluginFixture("log-counter.ts") }] }] });
  ctx.pool = new Pool(ctx.weir.url, { connections: 50 });
});
Batches.after(async (ctx) => { await ctx.pool.close(); await ctx.weir.stop(); await ctx.up.close(); });

Batches("50 requests in a burst run every onLog call exactly once", async ({ weir, pool }) => {
  const run = randomUUID();
  const before = (await viewOf(weir, "log-counter")).calls;
  const statuses = await burst(pool, 50, run);
  assert.ok(statuses.every((s) => s === 200), statuses.join());
  const seen = await poll("50 onLog calls", async () => {
    const m = await loggedSeqs(weir, run);
    return m.size === 50 ? m : undefined;
  }, 5000);
  // Give a duplicate the time to show up before judging.
  await new Promise((r) => setTimeout(r, 100));
  const again = await loggedSeqs(weir, run);
  assert.equal([...again.keys()].sort(), Array.from({ length: 50 }, (_, i) => String(i)).sort());
  assert.ok([...seen.values(), ...again.values()].every((v) => v === 1), JSON.stringify(Object.fromEntries(again)));
  const view = await viewOf(weir, "log-counter");
  assert.is(view.calls - before, 50);
  assert.is(view.failures, 0);
  assert.is(view.logDropped, 0);
});

Batches("a throwing onLog call fails only itself; the others of its batch still run", async ({ weir, pool }) => {
  const run = randomUUID();
  const throwers = new Set([7, 23, 41]);
  const before = await viewOf(weir, "log-counter");
  const statuses = await burst(pool, 50, run, (i): Record<string, string> => (throwers.has(i) ? { "x-throw-in-log": "1" } : {}));
  assert.ok(statuses.every((s) => s === 200), "onLog failures never reach the response");
  const seen = await poll("47 onLog calls", async () => {
    const m = await loggedSeqs(weir, run);
    return m.size === 47 ? m : undefined;
  }, 5000);
  const view = await poll("3 onLog failures", async () => {
    const v = await viewOf(weir, "log-counter");
    return v.failures - before.failures === 3 ? v : undefined;
  }, 5000);
  for (const i of throwers) assert.not.ok(seen.has(String(i)), `seq ${i} threw and must not count`);
  assert.ok([...seen.values()].every((v) => v === 1));
  assert.is(view.calls - before.calls, 50);
  const onLogErrors = view.errors.filter((e) => e.hook === "onLog");
  assert.ok(onLogErrors.length >= 3);
  assert.match(onLogErrors.at(-1)!.message, /onLog asked to throw/);
  assert.is(view.state, "active", "the successes after the failures keep it active");
});

Batches.run();

const Bounded = suite<{ up: TestUpstream; weir: TestWeir }>("onLog queue: bounded");

Bounded.before(async (ctx) => {
  ctx.up = await startUpstream((_req, res) => { res.writeHead(200, { "content-length": "2" }); res.end("ok"); });
  ctx.weir = await startWeir({
    routes: [{
      match: { path: "/" }, upstream: ctx.up.url,
      // 4 ms of busy work per call (well under its limit): ~250 calls a second, far fewer than the burst.
      plugins: [{ use: pluginFixture("slow-log.ts"), config: { busyMs: 4 }, limits: { timeoutMs: 500 } }],
    }],
  });
});
Bounded.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

Bounded("a slow onLog under a burst drops what overflows, and no request waits for it", async ({ weir }) => {
  const N = 12_000;
  const BUSY_MS = 4;
  const rssBefore = process.memoryUsage().rss;
  const pool = new Pool(weir.url, { connections: 64, pipelining: 4 });
  let next = 0, ok = 0, slowest = 0;
  const started = performance.now();
  try {
    const worker = async () => {
      while (next < N) {
        next++;
        const t0 = performance.now();
        const res = await pool.request({ path: "/x", method: "GET" });
        await res.body.dump();
        if (res.statusCode === 200) ok++;
        slowest = Math.max(slowest, performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: 256 }, worker));
  } finally { await pool.close(); }
  const elapsed = performance.now() - started;
  assert.is(ok, N);
  // Run one after another, the onLog calls alone would take N * 4 ms = 48 s: the burst was not
  // paced by them.
  assert.ok(elapsed < (N * BUSY_MS) / 4, `the burst took ${Math.round(elapsed)} ms: requests waited for onLog`);

  const view = await viewOf(weir, "slow-log");
  assert.ok(view.logDropped > 0, `logDropped ${view.logDropped} after ${N} requests and ${view.calls} onLog calls`);
  assert.ok(view.calls + view.logDropped <= N);
  assert.ok(N - view.logDropped - view.calls <= 10_000, "at most 10,000 calls wait in the queue");

  // With the queue still full, a new request is answered at once.
  const t0 = performance.now();
  const res = await request(`${weir.url}/after`);
  await res.body.dump();
  assert.is(res.statusCode, 200);
  const ms = performance.now() - t0;
  assert.ok(ms < 250, `a request behind a full onLog queue took ${Math.round(ms)} ms`);

  const grown = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
  assert.ok(grown < 300, `RSS grew by ${Math.round(grown)} MB`);
  assert.ok(view.memory.heapUsedBytes < view.memory.limitMb * 1024 * 1024, "the isolate stays under its memory limit");
  assert.is(view.failures, 0, JSON.stringify(view.errors));
  console.log(`    ${N} requests in ${Math.round(elapsed)} ms (slowest ${Math.round(slowest)} ms); onLog ran ${view.calls}, dropped ${view.logDropped}`);
});

Bounded("stopping Weir with a full queue disposes the isolate at once and counts what was left as dropped", async ({ weir }) => {
  const instance = weir.rt.plugins.all().find((s) => s.current.name === "slow-log")!.current;
  const t0 = performance.now();
  await weir.stop();
  assert.ok(performance.now() - t0 < 2000, "the queue does not hold up the shutdown");
  assert.is(instance.calls + instance.logDropped, 12_001);
  assert.is(instance.heapUsed(), 0);
});

Bounded.run();
