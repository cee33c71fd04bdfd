/**
 * Circuit breaking: at most maxConnections requests with the upstream, up to maxPending waiting,
 * a fast 503 beyond, and a waiting request that gives up after the connect timeout.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { startUpstream, type UpstreamHandler } from "../support/upstream.js";
import { startWeir } from "../support/weir.js";
import { load } from "./support.js";

const route = [{ match: { path: "/" }, upstream: "api" }];
function slowCounting(ms: number, seen: { now: number; max: number }): UpstreamHandler {
  return (_req, res) => {
    seen.now++;
    seen.max = Math.max(seen.max, seen.now);
    setTimeout(() => { seen.now--; res.writeHead(200, { "content-length": 2 }); res.end("ok"); }, ms);
  };
}

const Breaker = suite("circuit breaking");

Breaker("beyond maxConnections + maxPending requests get a fast 503 and the upstream never sees more than maxConnections at once", async () => {
  const c = { now: 0, max: 0 };
  const up = await startUpstream(slowCounting(1000, c));
  const weir = await startWeir({ upstreams: { api: { targets: [up.url], maxConnections: 2, maxPending: 1 } }, routes: route });
  try {
    const answers = await load(`${weir.url}/x`, 6, { concurrency: 6 });
    const rejected = answers.filter((a) => a.status === 503);
    assert.is(answers.filter((a) => a.status === 200).length, 3);
    assert.is(rejected.length, 3);
    for (const r of rejected) {
      // Well before a slot could free up (1 s): rejected without waiting, even on a loaded machine.
      assert.ok(r.ms < 600, `rejected in ${r.ms.toFixed(0)} ms`);
      assert.is((JSON.parse(r.body) as { code: string }).code, "WEIR_ERR_UPSTREAM_OVERLOADED");
    }
    assert.is(c.max, 2);
  } finally { await weir.stop(); await up.close(); }
});

Breaker("a waiting request gives up with 503 after the connect timeout", async () => {
  const c = { now: 0, max: 0 };
  const up = await startUpstream(slowCounting(1500, c));
  const weir = await startWeir({ upstreams: { api: { targets: [up.url], maxConnections: 1, maxPending: 1, timeouts: { connect: "150ms" } } }, routes: route });
  try {
    const answers = await load(`${weir.url}/x`, 2, { concurrency: 2 });
    const waited = answers.find((a) => a.status === 503)!;
    assert.ok(waited, JSON.stringify(answers));
    assert.ok(waited.ms >= 140 && waited.ms < 1000, `gave up after ${waited.ms.toFixed(0)} ms`);
    assert.ok(answers.some((a) => a.status === 200));
  } finally { await weir.stop(); await up.close(); }
});

Breaker.run();
