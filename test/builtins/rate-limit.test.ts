/** rate-limit (in-process store): GCRA arithmetic, schema, behaviour in the sandbox, through Weir. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { setTimeout as sleep } from "node:timers/promises";
import { loadPlugin } from "../../core/plugin-host/testing.js";
import { gcraStep, LocalGcra } from "../../core/store/gcra.js";
import { assertNamesKey, builtin, configProblems, startGateway } from "./support.js";

const plugin = builtin("rate-limit");

const Gcra = suite("GCRA arithmetic");
Gcra("allows a burst of exactly limit, then one request per interval", () => {
  let now = 1_000_000;
  const g = new LocalGcra(60_000, () => now);
  try {
    const first = [1, 2, 3, 4].map(() => g.take("k", 4, 1000));
    assert.equal(first.map((d) => d.allowed), [true, true, true, true]);
    assert.equal(first.map((d) => d.remaining), [3, 2, 1, 0]);
    const refused = g.take("k", 4, 1000);
    assert.is(refused.allowed, false);
    assert.is(refused.retryAfterMs, 250);
    assert.is(refused.resetMs, 1000);
    now += 249;
    assert.is(g.take("k", 4, 1000).allowed, false, "one ms before the interval");
    now += 1;
    const next = g.take("k", 4, 1000);
    assert.is(next.allowed, true, "at the interval boundary");
    assert.is(next.remaining, 0);
    now += 1000;
    assert.is(g.take("k", 4, 1000).remaining, 3, "a whole window later the quota is whole again");
  } finally { g.close(); }
});
Gcra("never admits more than limit + elapsed/interval, whatever the spacing (no boundary doubling)", () => {
  let now = 0;
  const g = new LocalGcra(60_000, () => now);
  try {
    let admitted = 0;
    // 10 per 1 s; hammer at 1 ms steps across three windows, including both sides of boundaries.
    for (let t = 0; t < 3000; t++) { now = 500 + t; if (g.take("k", 10, 1000).allowed) admitted++; }
    // A fixed window could admit 20 around a boundary; GCRA admits the burst plus one per 100 ms.
    assert.ok(admitted <= 10 + 30, `admitted ${admitted}`);
    assert.ok(admitted >= 10 + 29, `admitted ${admitted}`);
  } finally { g.close(); }
});
Gcra("keeps the remaining count exact with intervals that are not whole milliseconds", () => {
  for (const limit of [3, 7, 9, 11, 13, 1000]) {
    const d = gcraStep(0, 5_000, limit, 1000);
    assert.is(d.decision.remaining, limit - 1, `limit ${limit}`);
  }
});
Gcra("forgets keys whose quota is whole again", () => {
  let now = 0;
  const g = new LocalGcra(60_000, () => now);
  g.take("a", 5, 100);
  now = 1000;
  g.sweep();
  assert.is(g.size, 0);
  g.close();
});
Gcra.run();

const Schema = suite("rate-limit schema");
Schema("accepts the documented keys", async () => {
  assert.equal(await configProblems({ use: "rate-limit", config: { limit: 10, window: "1m", by: "header:x-user", onStoreError: "closed" } }), []);
  assert.equal(await configProblems({ use: "rate-limit", config: { limit: 10, window: 1000, by: "ip" } }), []);
});
Schema("refuses bad values, naming the key", async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ window: "1m", by: "ip" }, "config.limit"],
    [{ limit: 0, window: "1m", by: "ip" }, "config.limit"],
    [{ limit: 5, window: "a minute", by: "ip" }, "config.window"],
    [{ limit: 5, window: "1m", by: "cookie" }, "config.by"],
    [{ limit: 5, window: "1m", by: "header:" }, "config.by"],
    [{ limit: 5, window: "1m", by: "ip", onStoreError: "maybe" }, "config.onStoreError"],
  ];
  for (const [config, key] of cases) {
    const p = await configProblems({ use: "rate-limit", config });
    assert.ok(p.some((l) => l.startsWith(`routes[0].plugins[0].${key}`)), `${JSON.stringify(config)}: ${p.join("\n")}`);
  }
});
Schema("refuses an unknown key", async () => {
  const p = await configProblems({ use: "rate-limit", config: { limit: 5, window: "1m", by: "ip", burst: 3 } });
  assertNamesKey(p, "config.burst");
});
Schema.run();

const Behaviour = suite("rate-limit in the sandbox");
Behaviour("counts per client ip, then answers 429 with Retry-After and the RateLimit headers", async () => {
  const p = await loadPlugin(plugin, { config: { limit: 3, window: "10s", by: "ip" } });
  try {
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await p.request({ clientIp: "10.0.0.1" });
      assert.is(r.error, null);
      assert.is(r.responded, null);
      // Set in onRequest, applied to the response when it comes (no onResponse hook).
      assert.is(r.response.headers["ratelimit-limit"], "3");
      remaining.push(r.response.headers["ratelimit-remaining"]!);
    }
    assert.equal(remaining, ["2", "1", "0"]);
    const refused = await p.request({ clientIp: "10.0.0.1" });
    assert.is(refused.responded?.status, 429);
    assert.is(refused.responded?.headers["retry-after"], "4"); // 10 s / 3 = 3.34 s, rounded up
    assert.is(refused.responded?.headers["ratelimit-remaining"], "0");
    assert.is(refused.responded?.headers["ratelimit-reset"], "10");
    assert.is((refused.responded?.json as { error: string }).error, "too many requests");
    const other = await p.request({ clientIp: "10.0.0.2" });
    assert.is(other.responded, null, "another client has its own quota");
  } finally { await p.close(); }
});
Behaviour("counts by consumer (anonymous requests by ip), by route and by header", async () => {
  const byConsumer = await loadPlugin(plugin, { config: { limit: 1, window: "10s", by: "consumer" } });
  const byRoute = await loadPlugin(plugin, { config: { limit: 1, window: "10s", by: "route" } });
  const byHeader = await loadPlugin(plugin, { config: { limit: 1, window: "10s", by: "header:X-User" } });
  try {
    assert.is((await byConsumer.request({ consumer: "alice", clientIp: "1.1.1.1" })).responded, null);
    assert.is((await byConsumer.request({ consumer: "alice", clientIp: "2.2.2.2" })).responded?.status, 429, "same consumer, other ip");
    assert.is((await byConsumer.request({ consumer: "bob", clientIp: "1.1.1.1" })).responded, null);
    assert.is((await byConsumer.request({ clientIp: "1.1.1.1" })).responded, null, "anonymous: counted by ip, not as a consumer");
    assert.is((await byRoute.request({ route: "a", clientIp: "1.1.1.1" })).responded, null);
    assert.is((await byRoute.request({ route: "a", clientIp: "9.9.9.9" })).responded?.status, 429);
    assert.is((await byRoute.request({ route: "b" })).responded, null);
    assert.is((await byHeader.request({ headers: { "x-user": "u1" } })).responded, null);
    assert.is((await byHeader.request({ headers: { "X-USER": "u1" } })).responded?.status, 429);
    assert.is((await byHeader.request({ headers: { "x-user": "u2" } })).responded, null);
  } finally { await Promise.all([byConsumer.close(), byRoute.close(), byHeader.close()]); }
});
Behaviour("lets a request through again after one interval (window boundary)", async () => {
  const p = await loadPlugin(plugin, { config: { limit: 2, window: "400ms", by: "ip" } });
  try {
    assert.is((await p.request()).responded, null);
    assert.is((await p.request()).responded, null);
    assert.is((await p.request()).responded?.status, 429);
    await sleep(230); // one interval is 200 ms
    assert.is((await p.request()).responded, null);
    assert.is((await p.request()).responded?.status, 429);
  } finally { await p.close(); }
});
Behaviour("fails with a clear error when the store is not granted", async () => {
  const p = await loadPlugin(plugin, { config: { limit: 2, window: "1s", by: "ip" }, permissions: {} });
  try {
    assert.match((await p.request()).error ?? "", /rateLimit/);
  } finally { await p.close(); }
});
Behaviour.run();

const Integration = suite("rate-limit through Weir");
Integration("429s never reach the upstream; every response has the RateLimit headers", async () => {
  const g = await startGateway([{ use: "rate-limit", config: { limit: 5, window: "1m", by: "ip" } }]);
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const r = await g.get("/x");
      statuses.push(r.status);
      assert.is(r.headers["ratelimit-limit"], "5");
      assert.ok(r.headers["ratelimit-remaining"] !== undefined && r.headers["ratelimit-reset"] !== undefined);
      if (r.status === 429) {
        assert.ok(Number(r.headers["retry-after"]) >= 1);
        assert.is(r.json().error, "too many requests");
        assert.type(r.json().requestId, "string");
      }
    }
    assert.equal(statuses, [200, 200, 200, 200, 200, 429, 429, 429]);
    assert.is(g.upstream.seen.length, 5);
  } finally { await g.close(); }
});
Integration("a spoofed X-Forwarded-For from an untrusted peer does not get a fresh quota", async () => {
  const g = await startGateway([{ use: "rate-limit", config: { limit: 2, window: "1m", by: "ip" } }]);
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await g.get("/x", { "x-forwarded-for": `203.0.113.${i}` })).status);
    assert.equal(statuses, [200, 200, 429, 429]);
  } finally { await g.close(); }
});
Integration("behind a trusted proxy, clients named by X-Forwarded-For are counted apart", async () => {
  const g = await startGateway([{ use: "rate-limit", config: { limit: 1, window: "1m", by: "ip" } }], { trustedProxies: ["127.0.0.1/32"] });
  try {
    assert.is((await g.get("/x", { "x-forwarded-for": "203.0.113.1" })).status, 200);
    assert.is((await g.get("/x", { "x-forwarded-for": "203.0.113.1" })).status, 429);
    assert.is((await g.get("/x", { "x-forwarded-for": "203.0.113.2" })).status, 200);
  } finally { await g.close(); }
});
Integration.run();
