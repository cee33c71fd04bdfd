/**
 * The order and reach of a plugin chain, proven through a real Weir and a real upstream: global
 * plugins then the route's in config order, respond short-circuits, onResponse sees upstream and
 * local answers, onLog runs after the response without delaying it, vars and consumer travel
 * along the chain, async hooks in the middle, and path rewrites reach the upstream.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createServer } from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { request } from "undici";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, tempDir, type TestWeir } from "../support/weir.js";
import type { PluginEntryConfig } from "../../core/config/schema.js";
import { fixtureWithOrigin, pluginFixture, poll } from "./support.js";

/** undici gives a repeated response header as an array; node:http joins request headers with ", ". */
const joined = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v.join(", ") : v);

const tag = (config: Record<string, unknown>): PluginEntryConfig => ({ use: pluginFixture("chain-tag.ts"), config, permissions: { store: true } });

const Chain = suite<{ up: TestUpstream; weir: TestWeir }>("plugin chain");

Chain.before(async (ctx) => {
  ctx.up = await startUpstream();
  ctx.weir = await startWeir({
    plugins: [tag({ name: "g1" })],
    routes: [
      { name: "chain", match: { path: "/chain" }, upstream: ctx.up.url, plugins: [tag({ name: "r1" }), tag({ name: "r2", async: true, setConsumer: "alice" }), tag({ name: "r3" })] },
      { name: "stop", match: { path: "/stop" }, upstream: ctx.up.url, plugins: [tag({ name: "a" }), tag({ name: "b", respondOn: "/stop/here" }), tag({ name: "c" })] },
      { name: "replace", match: { path: "/replace" }, upstream: ctx.up.url, plugins: [tag({ name: "x", respondInResponse: true }), tag({ name: "y" })] },
      { name: "rewrite", match: { path: "/rewrite" }, upstream: ctx.up.url, plugins: [tag({ name: "w", async: true, rewritePrefix: "/v2" })] },
    ],
  });
});
Chain.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

Chain("global plugins run first, then the route's, in config order", async ({ weir, up }) => {
  const res = await request(`${weir.url}/chain/items`);
  await res.body.text();
  assert.is(res.statusCode, 200);
  assert.is(up.seen.at(-1)!.headers["x-chain"], "g1, r1, r2, r3");
  assert.is(joined(res.headers["x-chain-res"]), "g1, r1, r2, r3");
});

Chain("ctx.vars is shared along the chain, across an async hook in the middle", async ({ weir }) => {
  const res = await request(`${weir.url}/chain/items`);
  await res.body.text();
  assert.is(res.headers["x-order"], "g1,r1,r2,r3");
});

Chain("ctx.consumer set by one plugin is seen by the next ones and by the response hooks", async ({ weir, up }) => {
  const res = await request(`${weir.url}/chain/items`);
  await res.body.text();
  const h = up.seen.at(-1)!.headers;
  assert.is(h["x-seen-consumer-r1"], "none");
  assert.is(h["x-seen-consumer-r2"], "none");
  assert.is(h["x-seen-consumer-r3"], "alice");
  assert.is(res.headers["x-consumer-at-response"], "alice");
});

Chain("respond stops the chain and the upstream is not contacted; response hooks still run", async ({ weir, up }) => {
  const before = up.seen.length;
  const res = await request(`${weir.url}/stop/here`);
  const body = (await res.body.json()) as { by: string; order: string[] };
  assert.is(res.statusCode, 418);
  assert.equal(body, { by: "b", order: ["g1", "a", "b"] });
  assert.is(up.seen.length, before, "the upstream was contacted");
  assert.is(res.headers["x-order"], "g1,a,b", "c's onRequest ran");
  assert.is(joined(res.headers["x-chain-res"]), "g1, a, b, c");
  assert.match(String(res.headers["content-type"]), /application\/json/);
});

Chain("a request the responder lets through reaches the upstream", async ({ weir, up }) => {
  const res = await request(`${weir.url}/stop/elsewhere`);
  await res.body.text();
  assert.is(res.statusCode, 200);
  assert.is(up.seen.at(-1)!.headers["x-chain"], "g1, a, b, c");
});

Chain("onResponse runs on the upstream's answer and can replace it; later response hooks see the new answer", async ({ weir, up }) => {
  const before = up.seen.length;
  const res = await request(`${weir.url}/replace/x`);
  const body = (await res.body.json()) as Record<string, unknown>;
  assert.is(up.seen.length, before + 1, "the upstream answered first");
  assert.is(res.statusCode, 203);
  assert.equal(body, { replacedBy: "x", upstreamStatus: 200 });
  // ctx.respond replaces the headers too; y's onResponse then runs on the new answer. Regression:
  // headers set by a later plugin were dropped when the answer came from an upstream.
  assert.is(joined(res.headers["x-chain-res"]), "y", "y ran after x replaced the answer");
  assert.is(res.headers["x-order"], "g1,x,y");
});

Chain("ctx.request.path written in an async onRequest reaches the upstream, with the query", async ({ weir, up }) => {
  const res = await request(`${weir.url}/rewrite/a/b?q=1`);
  await res.body.text();
  assert.is(res.statusCode, 200);
  assert.is(up.seen.at(-1)!.url, "/v2/rewrite/a/b?q=1");
});

Chain.run();

const Log = suite("onLog");

Log("runs after the response is sent and never delays it", async () => {
  const up = await startUpstream();
  const logs: { at: number; body: Record<string, unknown> }[] = [];
  // The collector takes 800 ms to answer: if onLog were on the request path, the client would wait.
  const collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      logs.push({ at: performance.now(), body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> });
      setTimeout(() => res.end("ok"), 800);
    });
  });
  collector.listen(0, "127.0.0.1");
  await once(collector, "listening");
  const origin = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
  const file = fixtureWithOrigin("log-reporter.ts", tempDir(), origin);
  const weir = await startWeir({ routes: [{ match: { path: "/" }, upstream: up.url, plugins: [{ use: file, permissions: { fetch: [origin] } }] }] });
  try {
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const res = await request(`${weir.url}/logged/${i}`);
      await res.body.text();
      const answeredAt = performance.now();
      assert.is(res.statusCode, 200);
      assert.ok(answeredAt - started < 500, `the response took ${(answeredAt - started).toFixed(0)} ms`);
      const entry = await poll(`onLog of request ${i}`, () => logs.find((l) => l.body.path === `/logged/${i}`));
      assert.ok(entry.at >= answeredAt - 1, "onLog ran before the client had its response");
      assert.is(entry.body.status, 200);
      assert.is(entry.body.requestId, res.headers["x-request-id"]);
      assert.equal(entry.body.vars, { reporter: "seen" });
      const timing = entry.body.timing as { total: number; upstream: number };
      assert.ok(timing.total > 0 && timing.upstream >= 0 && timing.upstream <= timing.total, JSON.stringify(timing));
    }
  } finally {
    await weir.stop();
    await up.close();
    collector.closeAllConnections();
    collector.close();
  }
});

Log.run();

const Early = suite<{ up: TestUpstream; weir: TestWeir }>("response headers set in onRequest");

Early.before(async (ctx) => {
  ctx.up = await startUpstream((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "x-remove-me": "upstream", "content-length": "2" });
    res.end("ok");
  });
  ctx.weir = await startWeir({ routes: [{ match: { path: "/early" }, upstream: ctx.up.url, plugins: [{ use: pluginFixture("early-response-headers.ts") }] }] });
});
Early.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

Early("are applied to the upstream's response, removals included, without an onResponse hook", async ({ weir }) => {
  const res = await request(`${weir.url}/early/x`);
  assert.is(await res.body.text(), "ok");
  assert.is(res.statusCode, 200);
  assert.is(res.headers["x-early"], "set-in-onRequest");
  assert.is(res.headers["x-remove-me"], undefined);
  assert.is(res.headers["content-length"], "2");
  assert.not.match(String(res.headers["connection"] ?? ""), /x-should-never/);
});

Early("are applied to a local answer too", async ({ weir, up }) => {
  const before = up.seen.length;
  const res = await request(`${weir.url}/early/deny`);
  assert.equal(await res.body.json(), { error: "denied" });
  assert.is(res.statusCode, 403);
  assert.is(res.headers["x-early"], "set-in-onRequest");
  assert.is(up.seen.length, before);
});

Early.run();
