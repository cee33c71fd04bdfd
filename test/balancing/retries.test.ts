/**
 * Retries through real backends: how many times an upstream is asked, which requests may be sent
 * again, that a POST is never replayed after its bytes went out, and the retry budget.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "undici";
import { closedPort, startRawUpstream } from "../support/raw-upstream.js";
import { startUpstream, type UpstreamHandler } from "../support/upstream.js";
import { startWeir } from "../support/weir.js";
import { load } from "./support.js";

const ok: UpstreamHandler = (_req, res) => { res.writeHead(200, { "content-length": 2 }); res.end("ok"); };
const always500: UpstreamHandler = (_req, res) => { res.writeHead(500, { "content-length": 4 }); res.end("fail"); };
const route = [{ match: { path: "/" }, upstream: "api" }];

const Retries = suite("retries");

Retries("an always-500 upstream sees exactly 1 + attempts GETs and exactly 1 POST", async () => {
  const up = await startUpstream(always500);
  const weir = await startWeir({ upstreams: { api: { targets: [up.url], retries: { attempts: 2 } } }, routes: route });
  try {
    const get = await request(`${weir.url}/x`);
    assert.is(get.statusCode, 500);
    assert.is(await get.body.text(), "fail", "the last answer is passed on as it came");
    assert.is(up.seen.length, 3);
    up.seen.length = 0;
    const post = await request(`${weir.url}/x`, { method: "POST", body: "payload" });
    await post.body.text();
    assert.is(post.statusCode, 500);
    assert.is(up.seen.length, 1);
  } finally { await weir.stop(); await up.close(); }
});

Retries("without a retries key a 500 is not retried", async () => {
  const up = await startUpstream(always500);
  const weir = await startWeir({ upstreams: { api: { targets: [up.url] } }, routes: route });
  try {
    await load(`${weir.url}/x`, 1);
    assert.is(up.seen.length, 1);
  } finally { await weir.stop(); await up.close(); }
});

Retries("without a retries key a refused connection is retried once on another target (nginx's proxy_next_upstream error)", async () => {
  const up = await startUpstream(ok);
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const weir = await startWeir({ upstreams: { api: { targets: [dead, up.url], balance: "round-robin" } }, routes: route });
  try {
    const answers = await load(`${weir.url}/x`, 6);
    assert.equal(answers.map((a) => a.status), Array(6).fill(200));
    const post = await request(`${weir.url}/x`, { method: "POST", body: "payload" });
    assert.is(await post.body.text(), "ok");
    assert.is(up.seen.at(-1)!.body.toString(), "payload", "nothing was sent to the dead target, so the POST could go on");
  } finally { await weir.stop(); await up.close(); }
});

Retries("retries: { attempts: 0 } turns even connection-failure retries off", async () => {
  const up = await startUpstream(ok);
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const weir = await startWeir({ upstreams: { api: { targets: [dead, up.url], balance: "round-robin", retries: { attempts: 0 } } }, routes: route });
  try {
    const answers = await load(`${weir.url}/x`, 4);
    assert.ok(answers.some((a) => a.status === 502), `the dead target answers 502: ${answers.map((a) => a.status)}`);
  } finally { await weir.stop(); await up.close(); }
});

Retries("a failed GET is retried on another target and the client sees only the good answer", async () => {
  const [bad, good] = [await startUpstream(always500), await startUpstream(ok)];
  const weir = await startWeir({ upstreams: { api: { targets: [bad.url, good.url], retries: { attempts: 1 } } }, routes: route });
  try {
    const answers = await load(`${weir.url}/x`, 10);
    assert.ok(answers.every((a) => a.status === 200 && a.body === "ok"), JSON.stringify(answers.map((a) => a.status)));
    assert.is(bad.seen.length, 5);
    assert.is(good.seen.length, 10);
  } finally { await weir.stop(); await bad.close(); await good.close(); }
});

Retries("a POST whose target refuses the connection is sent, body intact, to another target", async () => {
  const dead = `http://127.0.0.1:${await closedPort()}`;
  const good = await startUpstream();
  const weir = await startWeir({ upstreams: { api: { targets: [dead, good.url], retries: { attempts: 1 } } }, routes: route });
  try {
    for (let i = 0; i < 4; i++) {
      const res = await request(`${weir.url}/x`, { method: "POST", body: `payload-${i}` });
      const body = (await res.body.json()) as { bodyBytes: number };
      assert.is(res.statusCode, 200);
      assert.is(body.bodyBytes, `payload-${i}`.length);
    }
    assert.equal(good.seen.map((r) => r.body.toString()), ["payload-0", "payload-1", "payload-2", "payload-3"]);
  } finally { await weir.stop(); await good.close(); }
});

Retries("a POST whose connection is reset after its bytes were sent is never replayed", async () => {
  const resetter = await startUpstream((req) => req.socket.destroy());
  const good = await startUpstream(ok);
  const weir = await startWeir({ upstreams: { api: { targets: [resetter.url, good.url], retries: { attempts: 2 } } }, routes: route });
  try {
    const res = await request(`${weir.url}/x`, { method: "POST", body: "once" });
    await res.body.text();
    assert.is(res.statusCode, 502);
    assert.is(resetter.seen.length, 1);
    assert.is(good.seen.length, 0);
  } finally { await weir.stop(); await resetter.close(); await good.close(); }
});

Retries("a GET reset on a reused keep-alive socket (backend closed it first) is retried safely", async () => {
  // Each connection answers one request with keep-alive, then is closed by the backend when the
  // next request arrives on it: what a backend whose keep-alive timeout is shorter than the pool's
  // idle timeout does at the wrong moment. Without retries that request is a 502. Two attempts,
  // because the retry itself may land on another pooled socket this backend will close.
  const up = await startRawUpstream((socket) => {
    socket.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
    socket.once("data", () => socket.destroy());
  });
  const without = await startWeir({ upstreams: { api: { targets: [up.url], retries: { attempts: 0 } } }, routes: route });
  const withRetries = await startWeir({ upstreams: { api: { targets: [up.url], retries: { attempts: 2 } } }, routes: route });
  try {
    const plain = await load(`${without.url}/x`, 4);
    assert.ok(plain.some((a) => a.status === 502), `the fault is real: ${plain.map((a) => a.status)}`);
    const retried = await load(`${withRetries.url}/x`, 10);
    assert.equal(retried.map((a) => a.status), Array(10).fill(200));
  } finally { await without.stop(); await withRetries.stop(); await up.close(); }
});

Retries("a backend that accepts and never answers: a GET is retried on another target after the response timeout", async () => {
  const silent = await startUpstream(() => undefined);
  const good = await startUpstream(ok);
  const weir = await startWeir({
    upstreams: { api: { targets: [silent.url, good.url], retries: { attempts: 1 }, timeouts: { response: "150ms" } } },
    routes: route,
  });
  try {
    const answers = await load(`${weir.url}/x`, 2);
    assert.ok(answers.every((a) => a.status === 200));
    assert.is(silent.seen.length, 1);
    assert.is(good.seen.length, 2);
    // undici checks its headers timeout on a coarse clock (up to ~1 s late), hence the wide bound.
    const slowest = Math.max(...answers.map((a) => a.ms));
    assert.ok(slowest >= 140 && slowest < 2500, `slowest ${slowest.toFixed(0)} ms`);
  } finally { await weir.stop(); await silent.close(); await good.close(); }
});

Retries("the retry budget caps concurrent retries at 3 when budgetPercent allows fewer", async () => {
  const slow500: UpstreamHandler = (_req, res) => setTimeout(() => { res.writeHead(503, { "content-length": 4 }); res.end("busy"); }, 150);
  const up = await startUpstream(slow500);
  const weir = await startWeir({ upstreams: { api: { targets: [up.url], retries: { attempts: 2, budgetPercent: 0 } } }, routes: route });
  try {
    const answers = await load(`${weir.url}/x`, 10, { concurrency: 10 });
    assert.ok(answers.every((a) => a.status === 503));
    // 10 first attempts; 3 retry slots, each used for up to 2 retries: 10 + 3 x 2 = 16, not 30.
    assert.is(up.seen.length, 16);
  } finally { await weir.stop(); await up.close(); }
});

Retries.run();
