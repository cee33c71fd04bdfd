/**
 * rate-limit with `store.redis`: counted cluster-wide by one atomic script on Redis's clock.
 * Needs the Redis at 127.0.0.1:6379 (fails, never skips, without it). The outage tests start their
 * own redis-server on a free port and stop that one, by PID.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request } from "undici";
import { RedisStore } from "../../core/store/redis-store.js";
import { rateLimitStats } from "../../core/store/gcra.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";
import { requireRedis } from "./support.js";

const REDIS = "redis://127.0.0.1:6379";

async function redisReady(w: TestWeir): Promise<void> {
  const store = w.rt.store as RedisStore;
  for (let i = 0; i < 100 && store.client.status !== "ready"; i++) await sleep(20);
  assert.is(store.client.status, "ready", "Weir's Redis client did not connect");
}

function route(upstream: TestUpstream, config: Record<string, unknown>) {
  return [{ name: "r", match: { path: "/" }, upstream: upstream.url, plugins: [{ use: "rate-limit", config }] }];
}

async function hit(url: string, dispatcher?: Agent): Promise<{ status: number; ms: number; headers: Record<string, unknown> }> {
  const t0 = performance.now();
  const res = await request(url + "/x", { dispatcher });
  await res.body.dump();
  return { status: res.statusCode, ms: performance.now() - t0, headers: res.headers };
}

const Script = suite("GCRA script on Redis");
Script("admits a burst of exactly limit, then refuses with Retry-After, then admits one per interval", async () => {
  await requireRedis(REDIS);
  const store = new RedisStore(REDIS);
  try {
    for (let i = 0; i < 50 && store.client.status !== "ready"; i++) await sleep(20);
    const key = `weir:test:gcra:${randomUUID()}`;
    const ds = [];
    for (let i = 0; i < 5; i++) ds.push(await store.rateLimit(key, 4, 400));
    assert.equal(ds.map((d) => d.allowed), [true, true, true, true, false]);
    assert.equal(ds.map((d) => d.remaining), [3, 2, 1, 0, 0]);
    assert.ok(ds[4]!.retryAfterMs > 50 && ds[4]!.retryAfterMs <= 100, `retryAfterMs ${ds[4]!.retryAfterMs}`);
    await sleep(110); // one interval
    assert.is((await store.rateLimit(key, 4, 400)).allowed, true);
    assert.is((await store.rateLimit(key, 4, 400)).allowed, false);
    const ttl = await store.client.pttl(key);
    assert.ok(ttl > 0 && ttl <= 400, `the key expires when the quota is whole again (pttl ${ttl})`);
  } finally { await store.close(); }
});
Script.run();

const Cluster = suite("rate-limit shared by two Weir instances");
Cluster("concurrent bursts through two instances admit at most the limit (+1%)", async () => {
  await requireRedis(REDIS);
  const upstream = await startUpstream();
  // A 1 h window: GCRA refills one request per 18 s, so every admission past 200 would be a race.
  const config = { limit: 200, window: "1h", by: "ip", bucket: `cluster-${randomUUID()}` };
  const a = await startWeir({ store: { redis: REDIS }, routes: route(upstream, config) } as never);
  const b = await startWeir({ store: { redis: REDIS }, routes: route(upstream, config) } as never);
  const agent = new Agent({ connections: 64 });
  try {
    await redisReady(a); await redisReady(b);
    const statuses = new Map<number, number>();
    // 4 waves of 150 concurrent requests, split across the two instances: 600 requests for a limit of 200.
    for (let wave = 0; wave < 4; wave++) {
      const rs = await Promise.all(Array.from({ length: 150 }, (_, i) => hit(i % 2 ? a.url : b.url, agent)));
      for (const r of rs) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
    const admitted = statuses.get(200) ?? 0;
    console.log(`    cluster: ${JSON.stringify(Object.fromEntries(statuses))} for a limit of 200 (over-admission ${admitted - 200})`);
    assert.ok(admitted <= 202, `admitted ${admitted}`);
    assert.ok(admitted >= 200, `admitted ${admitted}`);
    assert.is(admitted + (statuses.get(429) ?? 0), 600);
    assert.is(upstream.seen.length, admitted);
  } finally { await agent.close(); await a.stop(); await b.stop(); await upstream.close(); }
});
Cluster.run();

// ---- Redis stopped mid-run: our own redis-server, stopped by its PID -------------------------

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, "127.0.0.1");
  await new Promise((r) => s.once("listening", r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function ownRedis(): Promise<{ url: string; child: ChildProcess; stop(): void }> {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const url = `redis://127.0.0.1:${port}`;
  const probe = new RedisStore(url);
  try {
    for (let i = 0; i < 100 && probe.client.status !== "ready"; i++) await sleep(20);
    assert.is(probe.client.status, "ready", "our redis-server did not start");
  } finally { await probe.close(); }
  return { url, child, stop: () => { try { process.kill(child.pid!, "SIGKILL"); } catch { /* gone */ } } };
}

const Outage = suite("rate-limit when Redis stops mid-run");
Outage("fail open: requests keep completing, within ~100 ms extra, and the outage is counted", async () => {
  const redis = await ownRedis();
  const upstream = await startUpstream();
  const w = await startWeir({ store: { redis: redis.url }, routes: route(upstream, { limit: 1000, window: "1m", by: "ip", onStoreError: "open" }) } as never);
  const agent = new Agent({ connections: 4 });
  try {
    await redisReady(w);
    const before = [];
    for (let i = 0; i < 30; i++) before.push(await hit(w.url, agent));
    assert.ok(before.every((r) => r.status === 200));
    const errorsBefore = rateLimitStats().storeErrors;

    redis.stop(); // killed: connections refused from now on
    await sleep(50);
    const during = [];
    for (let i = 0; i < 30; i++) during.push(await hit(w.url, agent));
    assert.ok(during.every((r) => r.status === 200), JSON.stringify(during.map((r) => r.status)));
    const p = (xs: number[], q: number) => xs.sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(xs.length * q))]!;
    const baseline = p(before.map((r) => r.ms), 0.5);
    const outage99 = p(during.map((r) => r.ms), 0.99);
    console.log(`    outage (killed, open): median before ${baseline.toFixed(2)} ms, p99 during ${outage99.toFixed(2)} ms`);
    assert.ok(outage99 < baseline + 150, `p99 during the outage ${outage99} ms`);
    assert.ok(rateLimitStats().storeErrors >= errorsBefore + 30, "every failed decision is counted");
    const metrics = await (await fetch(`${w.admin}/metrics`)).text();
    const open = Number(/^weir_ratelimit_store_errors_total\{policy="open"\} (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(open >= 30, `the outage shows on /metrics: ${open}`);
    assert.is(during[0]!.headers["ratelimit-limit"], "1000");
  } finally { redis.stop(); await agent.close(); await w.stop(); await upstream.close(); }
});
Outage("fail closed: 429 JSON while Redis is down; a hung Redis costs at most the 100 ms command timeout", async () => {
  const redis = await ownRedis();
  const upstream = await startUpstream();
  const w = await startWeir({ store: { redis: redis.url }, routes: route(upstream, { limit: 1000, window: "1m", by: "ip", onStoreError: "closed" }) } as never);
  const agent = new Agent({ connections: 4 });
  try {
    await redisReady(w);
    assert.is((await hit(w.url, agent)).status, 200);
    const seen = upstream.seen.length;

    process.kill(redis.child.pid!, "SIGSTOP"); // hung: connected, never answering
    const hung = [];
    for (let i = 0; i < 5; i++) hung.push(await hit(w.url, agent));
    console.log(`    outage (hung, closed): ${hung.map((r) => r.ms.toFixed(0)).join(", ")} ms`);
    assert.ok(hung.every((r) => r.status === 429));
    assert.ok(hung.every((r) => r.ms < 250), JSON.stringify(hung.map((r) => r.ms)));

    redis.stop(); // SIGKILL also ends a stopped process
    await sleep(100);
    const res = await request(w.url + "/x", { dispatcher: agent });
    const body = await res.body.json() as { error: string };
    assert.is(res.statusCode, 429);
    assert.is(body.error, "rate limit store unavailable");
    assert.is(res.headers["retry-after"], "1");
    assert.is(upstream.seen.length, seen, "refused requests never reach the upstream");
  } finally { redis.stop(); await agent.close(); await w.stop(); await upstream.close(); }
});
Outage.run();
