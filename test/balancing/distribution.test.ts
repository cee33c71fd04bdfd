/**
 * Every algorithm through real upstream servers: how many requests each backend saw.
 * Tolerances are stated per test; sequential traffic is what makes them tight.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { BalanceName } from "../../core/config/schema.js";
import { startUpstream, type TestUpstream, type UpstreamHandler } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";
import { load } from "./support.js";

const ok: UpstreamHandler = (_req, res) => { res.writeHead(200, { "content-length": 2 }); res.end("ok"); };
const slow = (ms: number): UpstreamHandler => (_req, res) => setTimeout(() => { res.writeHead(200, { "content-length": 4 }); res.end("slow"); }, ms);

const Distribution = suite<{ ups: TestUpstream[] }>("balancer distribution through real upstreams");
Distribution.before(async (ctx) => { ctx.ups = await Promise.all([startUpstream(ok), startUpstream(ok), startUpstream(ok)]); });
Distribution.after(async (ctx) => { await Promise.all(ctx.ups.map((u) => u.close())); });
Distribution.before.each((ctx) => { for (const u of ctx.ups) u.seen.length = 0; });

async function withWeir(ups: TestUpstream[], balance: BalanceName, weights: number[], run: (w: TestWeir) => Promise<void>, extra: Record<string, unknown> = {}) {
  const weir = await startWeir({
    upstreams: { api: { balance, targets: ups.map((u, i) => ({ url: u.url, weight: weights[i] ?? 1 })), ...extra } },
    routes: [{ match: { path: "/" }, upstream: "api" }],
  });
  try { await run(weir); } finally { await weir.stop(); }
}

Distribution("round-robin gives weights 1:2:3 exactly 100/200/300 of 600 requests", async ({ ups }) => {
  await withWeir(ups, "round-robin", [1, 2, 3], async (w) => { await load(`${w.url}/x`, 600, { concurrency: 4 }); });
  assert.equal(ups.map((u) => u.seen.length), [100, 200, 300]);
});

for (const balance of ["random", "least-conn"] as BalanceName[]) {
  Distribution(`${balance} spreads 600 requests over weights 1:2:3 within 25% of each share`, async ({ ups }) => {
    await withWeir(ups, balance, [1, 2, 3], async (w) => { await load(`${w.url}/x`, 600); });
    const counts = ups.map((u) => u.seen.length);
    [100, 200, 300].forEach((expected, i) => {
      assert.ok(counts[i]! > expected * 0.75 && counts[i]! < expected * 1.25, `${balance}: ${counts}`);
    });
  });
}

// p2c-ewma follows measured latency, not weights (the conformance suite checks weights before any
// latency is known): over equally fast backends a peak in one's latency steers traffic away from
// it for seconds, so the only promise is that no backend is starved.
Distribution("p2c-ewma gives each of three equally fast backends a share of 600 requests", async ({ ups }) => {
  await withWeir(ups, "p2c-ewma", [1, 1, 1], async (w) => { await load(`${w.url}/x`, 600, { concurrency: 4 }); });
  const counts = ups.map((u) => u.seen.length);
  for (const c of counts) assert.ok(c >= 30, `p2c-ewma: ${counts}`);
});

Distribution("hash keeps each user on one backend and spreads 300 users over all three", async ({ ups }) => {
  await withWeir(ups, "hash", [1, 1, 1], async (w) => {
    await load(`${w.url}/x`, 300, { headers: (i) => ({ "x-user": `user-${i}` }) });
    const spread = ups.map((u) => u.seen.length);
    for (const c of spread) assert.ok(c > 50, `spread ${spread}`);
    for (const u of ups) u.seen.length = 0;
    await load(`${w.url}/x`, 30, { headers: () => ({ "x-user": "alice" }) });
    assert.equal(ups.map((u) => u.seen.length).sort((a, b) => a - b), [0, 0, 30]);
  }, { hashOn: "header:x-user" });
});

Distribution("hash without the key header falls back to round-robin", async ({ ups }) => {
  await withWeir(ups, "hash", [1, 1, 1], async (w) => { await load(`${w.url}/x`, 90); }, { hashOn: "header:x-user" });
  assert.equal(ups.map((u) => u.seen.length), [30, 30, 30]);
});

const Latency = suite("latency- and load-aware balancing");

Latency("least-conn sends less to a backend that holds requests longer", async () => {
  const ups = [await startUpstream(slow(100)), await startUpstream(ok), await startUpstream(ok)];
  try {
    await withWeir(ups, "least-conn", [1, 1, 1], async (w) => { await load(`${w.url}/x`, 120, { concurrency: 6 }); });
    const counts = ups.map((u) => u.seen.length);
    assert.ok(counts[0]! < 120 * 0.15, `slow backend got ${counts[0]} of 120 (${counts})`);
  } finally { await Promise.all(ups.map((u) => u.close())); }
});

Latency("p2c-ewma sends less to a backend that answers slower", async () => {
  const ups = [await startUpstream(slow(40)), await startUpstream(ok), await startUpstream(ok)];
  try {
    await withWeir(ups, "p2c-ewma", [1, 1, 1], async (w) => { await load(`${w.url}/x`, 200, { concurrency: 4 }); });
    const counts = ups.map((u) => u.seen.length);
    // Random would give the slow one a third (67); p2c only picks it when it is drawn twice.
    assert.ok(counts[0]! < 200 * 0.12, `slow backend got ${counts[0]} of 200 (${counts})`);
  } finally { await Promise.all(ups.map((u) => u.close())); }
});

Distribution.run();
Latency.run();
