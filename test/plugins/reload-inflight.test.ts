/**
 * A hot reload while requests are inside a plugin's async hooks (awaiting ctx.store): the
 * requests that started on the old version finish on it (their async onResponse runs on the old
 * isolate after the swap), later requests use the new one, and the old isolate is disposed once
 * the last of them has drained (their queued onLog calls included), leaving only the new version
 * in GET /plugins.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, tempDir, type TestWeir } from "../support/weir.js";
import { adminPlugins, pluginFixture, poll } from "./support.js";

const source = readFileSync(pluginFixture("async-versioned.ts"), "utf8");
const version = (v: string) => source.replace('const VERSION = "1.0.0";', `const VERSION = "${v}";`);

interface Ctx { up: TestUpstream; weir: TestWeir; file: string; held: (() => void)[] }

const InFlight = suite<Ctx>("hot reload with requests in flight on async hooks");

InFlight.before(async (ctx) => {
  ctx.held = [];
  // /slow is held at the upstream until the test lets it go: the request is then between the
  // plugin's async onRequest and its async onResponse.
  ctx.up = await startUpstream((req, res) => {
    const answer = () => { res.writeHead(200, { "content-type": "text/plain" }); res.end("ok"); };
    if (req.url!.startsWith("/slow")) ctx.held.push(answer);
    else answer();
  });
  ctx.file = join(tempDir(), "async-versioned.ts");
  writeFileSync(ctx.file, version("1.0.0"));
  ctx.weir = await startWeir({ routes: [{ match: { path: "/" }, upstream: ctx.up.url, plugins: [{ use: ctx.file, permissions: { store: true } }] }] });
});
InFlight.after(async (ctx) => { for (const r of ctx.held.splice(0)) r(); await ctx.weir.stop(); await ctx.up.close(); });

async function get(weir: TestWeir, path: string): Promise<{ status: number; version: string; seen: string }> {
  const res = await request(weir.url + path);
  await res.body.dump();
  return { status: res.statusCode, version: String(res.headers["x-plugin-version"]), seen: String(res.headers["x-seen"]) };
}

/** weir_async_versioned_logged{version} from GET /metrics: onLog calls each version ran. */
async function logged(weir: TestWeir, v: string): Promise<number> {
  const text = await (await request(`${weir.admin}/metrics`)).body.text();
  const m = new RegExp(`^weir_async_versioned_logged\\{version="${v.replace(/\./g, "\\.")}"\\} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

InFlight("in-flight requests finish on the old version, new ones use the new, the old isolate goes once drained", async ({ weir, up, file, held }) => {
  assert.is((await get(weir, "/warm")).version, "1.0.0");
  const old = weir.rt.plugins.all()[0]!.current;
  assert.is(old.manifest.version, "1.0.0");

  // 8 requests pass v1's async onRequest and wait at the upstream.
  const inflight = Array.from({ length: 8 }, (_, i) => get(weir, `/slow/${i}`));
  await poll("8 held requests", () => (held.length === 8 ? true : undefined));
  assert.ok(up.seen.filter((s) => s.url.startsWith("/slow")).every((s) => s.headers["x-plugin-version"] === "1.0.0"));

  writeFileSync(file, version("2.0.0"));
  await poll("the swap to 2.0.0", async () => ((await adminPlugins(weir.admin))[0]?.version === "2.0.0" ? true : undefined), 8000);

  // The old instance is retired but alive: its requests still need it.
  assert.ok(old.retired);
  assert.is(old.inflight, 8);
  assert.ok(old.heapUsed() > 0, "the old isolate must not be disposed while requests hold it");

  // New requests run both async hooks on v2, while the old ones are still held.
  for (let i = 0; i < 5; i++) {
    const r = await get(weir, `/fast/${i}`);
    assert.is(r.status, 200);
    assert.is(r.version, "2.0.0");
    assert.is(up.seen.at(-1)!.headers["x-plugin-version"], "2.0.0");
  }
  assert.ok(old.heapUsed() > 0);

  // Let the held requests go: their async onResponse runs on v1, after the swap.
  for (const r of held.splice(0)) r();
  const done = await Promise.all(inflight);
  for (const r of done) {
    assert.is(r.status, 200);
    assert.is(r.version, "1.0.0", "a request that started on v1 finishes on v1");
    assert.match(r.seen, /^\d+\/\d+$/, "its onResponse awaited the store");
  }

  // Drained: the old isolate is disposed, and only the new version is reported.
  await poll("the old isolate disposed", () => (old.heapUsed() === 0 ? true : undefined), 5000);
  assert.is(old.inflight, 0);
  const views = await adminPlugins(weir.admin);
  assert.is(views.length, 1);
  assert.is(views[0]!.version, "2.0.0");
  assert.is(views[0]!.state, "active");
  assert.ok(views[0]!.memory.heapUsedBytes > 0);
  assert.is(views[0]!.failures, 0, JSON.stringify(views[0]!.errors));
  assert.is(old.failures, 0, JSON.stringify(old.errors));
  // Their onLog calls, queued as they finished, ran on v1 before it was disposed (not dropped).
  assert.is(await logged(weir, "1.0.0"), 9);
  assert.is(old.logDropped, 0);
  await poll("v2's 5 onLog calls", async () => ((await logged(weir, "2.0.0")) === 5 ? true : undefined), 5000);
});

InFlight("the store outlives the reload: both versions count on the same keys", async ({ weir }) => {
  // warm 1 + slow 8 + fast 5 = 14 increments so far, across v1 and v2.
  const r = await get(weir, "/after");
  assert.is(r.version, "2.0.0");
  assert.is(r.seen, "15/15");
});

InFlight.run();
