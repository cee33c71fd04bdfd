/**
 * analytics with store.redis: cluster-wide totals on GET /analytics, against the real Redis at
 * 127.0.0.1:6379 and two real Weir instances. Route names are unique per run, so that other
 * suites writing analytics totals to the same Redis do not change what these tests read.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import type { WeirConfig } from "../../core/config/schema.js";
import { resetPluginMetrics } from "../../core/plugin-host/plugin-metrics.js";
import { startUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";
import { requireRedis } from "./support.js";

const REDIS = "redis://127.0.0.1:6379";

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await request(url);
  return { status: res.statusCode, body: await res.body.json() };
}

async function hit(w: TestWeir, path: string, key: string): Promise<void> {
  const res = await request(w.url + path, { headers: { "x-api-key": key } });
  await res.body.dump();
}

/** Polls GET /analytics until `check` passes (the plugin writes at most once a second). */
async function eventually(admin: string, route: string, check: (series: any[], body: any) => boolean, ms = 5000): Promise<any> {
  const deadline = Date.now() + ms;
  let last: any;
  for (;;) {
    last = (await getJson(admin + "/analytics")).body;
    const mine = (last.series ?? []).filter((s: any) => s.route === route);
    if (check(mine, last)) return { ...last, series: mine };
    if (Date.now() > deadline) throw new Error(`GET /analytics never showed what was expected for route ${route}: ${JSON.stringify(last)}`);
    await sleep(100);
  }
}

const Cluster = suite("analytics totals across instances sharing Redis");
Cluster.before(async () => { await requireRedis(REDIS); });

Cluster("two instances each serve requests; GET /analytics on either shows the sum", async () => {
  resetPluginMetrics();
  const upstream = await startUpstream();
  const route = `analytics-${randomUUID().slice(0, 8)}`;
  const config = {
    store: { redis: REDIS },
    plugins: [{ use: "analytics" }],
    routes: [{ name: route, match: { path: "/" }, upstream: upstream.url, plugins: [{ use: "key-auth", config: { keys: { "k-alice": "alice", "k-bob": "bob" } } }] }],
  } as unknown as WeirConfig;
  const a = await startWeir(config);
  const b = await startWeir(config);
  try {
    // A: 4 for alice, 1 refused (no key -> 401); B: 3 for bob. Each process writes its totals at
    // once on its first request, then at most once a second: the last request of each, after a
    // pause, carries what the others left pending.
    for (let i = 0; i < 4; i++) await hit(a, "/x", "k-alice");
    await hit(a, "/x", "wrong");
    for (let i = 0; i < 3; i++) await hit(b, "/y", "k-bob");
    await sleep(1100);
    await hit(a, "/x", "k-alice");
    await hit(b, "/y", "k-bob");

    const want = (series: any[]) => {
      const n = (consumer: string, cls: string) => series.find((s) => s.consumer === consumer && s.statusClass === cls)?.requests ?? 0;
      return n("alice", "2xx") === 5 && n("bob", "2xx") === 4 && n("anonymous", "4xx") === 1;
    };
    const fromA = await eventually(a.admin, route, want);
    const fromB = await eventually(b.admin, route, want);
    assert.is(fromA.source, "redis");
    assert.ok(fromA.processes >= 2, `at least both instances reported (got ${fromA.processes})`);
    assert.equal(fromA.series, fromB.series);
    const alice = fromA.series.find((s: any) => s.consumer === "alice")!;
    assert.ok(alice.latencyMsSum > 0 && alice.latencyMsAvg > 0, "latency summed");
    assert.ok(alice.responseBytes > 0, "response bytes summed");
    assert.ok(fromA.totals.requests >= 10, "cluster totals include both instances");
  } finally {
    await a.stop();
    await b.stop();
    await upstream.close();
  }
});

Cluster("a process that stops keeps its totals in the sum until their TTL", async () => {
  resetPluginMetrics();
  const upstream = await startUpstream();
  const route = `analytics-${randomUUID().slice(0, 8)}`;
  const config = (ttl: string) => ({
    store: { redis: REDIS },
    plugins: [{ use: "analytics", config: { ttl } }],
    routes: [{ name: route, match: { path: "/" }, upstream: upstream.url }],
  }) as unknown as WeirConfig;
  const a = await startWeir(config("2s"));
  const b = await startWeir(config("1h"));
  try {
    await hit(a, "/", "");
    await hit(b, "/", "");
    const anon = (series: any[]) => series.find((s) => s.consumer === "anonymous")?.requests ?? 0;
    await eventually(b.admin, route, (s) => anon(s) === 2);
    await a.stop();
    await eventually(b.admin, route, (s) => anon(s) === 2, 500);
    await eventually(b.admin, route, (s) => anon(s) === 1, 5000);
  } finally {
    await a.stop().catch(() => undefined);
    await b.stop();
    await upstream.close();
  }
});
Cluster.run();

const Local = suite("analytics totals without Redis");
Local("GET /analytics answers this process's totals, current without waiting for a flush", async () => {
  resetPluginMetrics();
  const upstream = await startUpstream();
  const route = `analytics-${randomUUID().slice(0, 8)}`;
  const w = await startWeir({ plugins: [{ use: "analytics" }], routes: [{ name: route, match: { path: "/" }, upstream: upstream.url }] } as unknown as WeirConfig);
  try {
    for (let i = 0; i < 3; i++) await hit(w, "/", "");
    const r = await eventually(w.admin, route, (s) => s[0]?.requests === 3, 2000);
    assert.is(r.source, "local");
    assert.is(r.processes, 1);
    assert.equal(Object.keys(r.series[0]).sort(), ["consumer", "latencyMsAvg", "latencyMsSum", "requestBytes", "requests", "responseBytes", "route", "statusClass"]);
    assert.is(r.totals.requests, 3);
  } finally {
    await w.stop();
    await upstream.close();
  }
});
Local.run();
