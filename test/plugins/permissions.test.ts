/**
 * A plugin gets only what it declares and its route entry grants: ctx.store, ctx.fetch and
 * ctx.jwt fail clearly without them, a declared but ungranted permission is refused at validate
 * and start with the entry's key path, and ctx.fetch reaches only allow-listed origins.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "undici";
import { runWeir } from "../support/cli.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, tempDir, withTestDefaults, writeConfig, type TestWeir } from "../support/weir.js";
import { loadPlugin } from "../../core/plugin-host/testing.js";
import { adminPlugins, fixtureWithOrigin, pluginFixture, poll } from "./support.js";

const Store = suite<{ up: TestUpstream }>("permissions: store");
Store.before(async (ctx) => { ctx.up = await startUpstream(); });
Store.after(async (ctx) => { await ctx.up.close(); });

Store("a plugin using ctx.store without declaring it fails with a clear message", async ({ up }) => {
  const weir = await startWeir({ routes: [{ match: { path: "/" }, upstream: up.url, plugins: [{ use: pluginFixture("store-undeclared.ts"), permissions: { store: true } }] }] });
  try {
    const before = up.seen.length;
    const res = await request(`${weir.url}/x`);
    const body = (await res.body.json()) as { error: string };
    assert.is(res.statusCode, 500);
    assert.match(body.error, /the plugin "store-undeclared" failed in onRequest/);
    assert.is(up.seen.length, before);
    const [view] = await adminPlugins(weir.admin);
    assert.match(view!.errors.at(-1)!.message, /ctx\.store needs a permission this plugin was not granted; declare it in definePlugin\(\{ permissions \}\) and grant it in the route entry's permissions:/);
  } finally { await weir.stop(); }
  const p = await loadPlugin(pluginFixture("store-undeclared.ts"));
  try {
    assert.match((await p.request()).error ?? "", /ctx\.store needs a permission/);
  } finally { await p.close(); }
});

Store("a declared store permission the entry does not grant is refused at start, naming the grant", async ({ up }) => {
  try {
    const w = await startWeir({ routes: [{ match: { path: "/" }, upstream: up.url, plugins: [{ use: pluginFixture("store-declared.ts") }] }] });
    await w.stop();
    assert.unreachable("Weir must refuse to start");
  } catch (err) {
    assert.match((err as Error).message, /routes\[0\]\.plugins\[0\]: the plugin "store-declared" asks for permissions this entry does not grant; add permissions: \{ store: true \}/);
  }
});

Store("weir validate reports the missing grant with its key path and exits 1", async ({ up }) => {
  const file = writeConfig(tempDir(), withTestDefaults({
    routes: [
      { match: { path: "/ok" }, upstream: up.url, plugins: [{ use: pluginFixture("store-declared.ts"), permissions: { store: true } }] },
      { match: { path: "/" }, upstream: up.url, plugins: [{ use: pluginFixture("store-declared.ts"), permissions: { jwt: true } }] },
    ],
  }));
  const cli = runWeir(["validate", "-c", file]);
  const { code } = await cli.exited;
  assert.is(code, 1, cli.output());
  const lines = cli.output().trim().split("\n");
  assert.equal(lines, [`${file}: routes[1].plugins[0]: the plugin "store-declared" asks for permissions this entry does not grant; add permissions: { store: true }`]);
});

Store("with the grant, the store works and counts across requests", async ({ up }) => {
  const weir = await startWeir({ routes: [{ match: { path: "/" }, upstream: up.url, plugins: [{ use: pluginFixture("store-declared.ts"), permissions: { store: true } }] }] });
  try {
    for (const expected of ["1", "2", "3"]) {
      const res = await request(`${weir.url}/x`);
      await res.body.text();
      assert.is(res.statusCode, 200);
      assert.is(up.seen.at(-1)!.headers["x-count"], expected);
    }
  } finally { await weir.stop(); }
});

Store("a plugin that tries to grant itself capabilities inside the sandbox is refused", async ({ up }) => {
  const weir = await startWeir({ routes: [{ match: { path: "/" }, upstream: up.url, plugins: [{ use: pluginFixture("self-grant.ts") }] }] });
  try {
    for (const which of ["store", "fetch", "jwt"]) {
      const res = await request(`${weir.url}/steal/${which}`);
      const body = (await res.body.json()) as { refused?: string; message?: string; escaped?: string };
      assert.is(res.statusCode, 403, JSON.stringify(body));
      assert.is(body.refused, which);
      // The bootstrap's entry points are gone from the global before plugin code runs, so the
      // sandbox's own check refuses first; the host would refuse as well.
      assert.match(body.message ?? "", new RegExp(`ctx\\.${which} needs a permission this plugin was not granted`));
    }
  } finally { await weir.stop(); }
});

Store.run();

const Fetch = suite<{ allowed: TestUpstream; refused: TestUpstream; up: TestUpstream; weir: TestWeir }>("permissions: fetch");

Fetch.before(async (ctx) => {
  ctx.up = await startUpstream();
  ctx.allowed = await startUpstream((_req, res) => { res.writeHead(200, { "content-type": "text/plain" }); res.end("allowed-answer"); });
  ctx.refused = await startUpstream((_req, res) => { res.end("must-not-be-reached"); });
  const file = fixtureWithOrigin("fetcher.ts", tempDir(), ctx.allowed.url);
  ctx.weir = await startWeir({ routes: [{ match: { path: "/" }, upstream: ctx.up.url, plugins: [{ use: file, permissions: { fetch: [ctx.allowed.url] } }] }] });
});
Fetch.after(async (ctx) => { await ctx.weir.stop(); await Promise.all([ctx.up.close(), ctx.allowed.close(), ctx.refused.close()]); });

Fetch("ctx.fetch reaches an allow-listed origin", async ({ weir, up, allowed }) => {
  const res = await request(`${weir.url}/x`, { headers: { "x-fetch-url": `${allowed.url}/check?a=1` } });
  await res.body.text();
  assert.is(res.statusCode, 200);
  assert.is(up.seen.at(-1)!.headers["x-fetched"], "200 allowed-answer");
  assert.is(allowed.seen.at(-1)!.url, "/check?a=1");
  assert.is(allowed.seen.at(-1)!.headers["x-from"], "fetcher");
});

Fetch("ctx.fetch to another port of the same host is refused before any connection", async ({ weir, refused }) => {
  for (const url of [`${refused.url}/x`, `http://localhost:${new URL(refused.url).port}/x`, `${refused.url.replace("http:", "https:")}/x`, "not a url"]) {
    const res = await request(`${weir.url}/x`, { headers: { "x-fetch-url": url } });
    const body = (await res.body.json()) as { error: string };
    assert.is(res.statusCode, 502, url);
    assert.match(body.error, url === "not a url" ? /is not a URL/ : /is not in this plugin's permissions\.fetch/);
  }
  assert.is(refused.seen.length, 0);
});

Fetch("an origin the plugin declares but the entry does not grant is refused at start", async ({ up, allowed }) => {
  const file = fixtureWithOrigin("fetcher.ts", tempDir(), allowed.url);
  try {
    const w = await startWeir({ routes: [{ match: { path: "/" }, upstream: up.url, plugins: [{ use: file, permissions: { fetch: ["http://127.0.0.1:1"] } }] }] });
    await w.stop();
    assert.unreachable("Weir must refuse to start");
  } catch (err) {
    assert.match((err as Error).message, new RegExp(`routes\\[0\\]\\.plugins\\[0\\]: the plugin "fetcher" asks for permissions this entry does not grant; add permissions: \\{ fetch: \\["${allowed.url.replace(/\./g, "\\.")}"\\] \\}`));
  }
});

Fetch("the plugin's view in GET /plugins stays active after refused fetches it handled", async ({ weir }) => {
  const view = await poll("the fetcher in /plugins", async () => (await adminPlugins(weir.admin)).find((p) => p.name === "fetcher"));
  assert.is(view.state, "active");
});

Fetch.run();
