/**
 * What plugin code can reach: nothing of the host. Each probe runs inside a real isolate behind a
 * real Weir, and its findings travel to a real upstream as request headers.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "undici";
import { fixturePath } from "../support/fixtures.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";
import { loadPlugin } from "../../core/plugin-host/testing.js";

const plugin = (name: string) => fixturePath("plugins", name);

const Escapes = suite<{ up: TestUpstream; weir: TestWeir }>("sandbox escapes");

Escapes.before(async (ctx) => {
  ctx.up = await startUpstream();
  ctx.weir = await startWeir({
    routes: [
      { name: "probe", match: { path: "/probe" }, upstream: ctx.up.url, plugins: [{ use: plugin("escape-probe.ts") }] },
      { name: "pollute", match: { path: "/pollute" }, upstream: ctx.up.url, plugins: [{ use: plugin("prototype-pollution.ts") }] },
    ],
  });
});
Escapes.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

async function probe(weir: TestWeir, up: TestUpstream) {
  const res = await request(`${weir.url}/probe`);
  await res.body.text();
  assert.is(res.statusCode, 200);
  return up.seen.at(-1)!.headers;
}

Escapes("process, require and module do not exist inside a plugin", async ({ weir, up }) => {
  const h = await probe(weir, up);
  assert.is(h["x-typeof-process"], "undefined");
  assert.is(h["x-typeof-require"], "undefined");
  assert.is(h["x-typeof-module"], "undefined");
  assert.is(h["x-eval-process"], "undefined");
});

Escapes("this.constructor.constructor('return process')() reaches only the isolate's own global", async ({ weir, up }) => {
  const h = await probe(weir, up);
  // The Function constructor of the isolate builds functions in the isolate: no `process` there.
  assert.is(h["x-ctor-escape"], "threw: ReferenceError");
  assert.is(h["x-ctx-ctor-escape"], "undefined");
  assert.is(h["x-fn-ctor-escape"], "undefined");
});

Escapes("no isolated-vm Reference, ExternalCopy or module is reachable from the global", async ({ weir, up }) => {
  const h = await probe(weir, up);
  assert.is(h["x-host-call"], "undefined");
  assert.is(h["x-ivm"], "undefined,undefined");
  assert.is(h["x-host-objects"], "none");
});

Escapes("__proto__ and constructor keys in vars, respond and headers do not pollute the host", async ({ weir, up }) => {
  const before = Object.getOwnPropertyNames(Object.prototype).sort().join();
  const res = await request(`${weir.url}/pollute/through`);
  const text = await res.body.text();
  assert.is(res.statusCode, 200, text);
  assert.is(({} as Record<string, unknown>).polluted, undefined);
  assert.is((Object.prototype as unknown as Record<string, unknown>).polluted, undefined);
  assert.is(Object.getOwnPropertyNames(Object.prototype).sort().join(), before);
  // The keys travel as plain data (own properties), never as prototypes.
  assert.is(res.headers["x-vars-proto-polluted"], "undefined");
  assert.ok(!/"polluted"/.test(String(res.headers["x-saw-vars"]).replace(/"__proto__":\{"polluted":"yes"\}|"prototype":\{"polluted":"yes"\}/g, "")), String(res.headers["x-saw-vars"]));
});

Escapes("__proto__ keys in a ctx.respond body and headers do not pollute the host", async ({ weir }) => {
  const res = await request(`${weir.url}/pollute/respond`);
  const body = (await res.body.json()) as Record<string, unknown>;
  assert.is(res.statusCode, 200);
  assert.is(res.headers["x-ok"], "1");
  assert.is(({} as Record<string, unknown>).polluted, undefined);
  assert.is(Object.getPrototypeOf(body), Object.prototype);
});

Escapes("importing node:fs fails at load with a message about the sandbox", async () => {
  try {
    await loadPlugin(plugin("imports-node-fs.ts"));
    assert.unreachable("a plugin importing node:fs must not load");
  } catch (err) {
    const message = (err as Error).message;
    assert.match(message, /cannot compile the plugin/);
    assert.match(message, /node:fs/);
    assert.match(message, /sandbox without Node built-ins/);
  }
});

Escapes("a config using a plugin that imports node:fs is refused at start with the entry's key path", async ({ up }) => {
  try {
    const w = await startWeir({ routes: [{ match: { path: "/" }, upstream: up.url, plugins: [{ use: plugin("imports-node-fs.ts") }] }] });
    await w.stop();
    assert.unreachable("Weir must refuse to start");
  } catch (err) {
    assert.match(String((err as Error).message), /routes\[0\]\.plugins\[0\]\.use: cannot compile the plugin/);
  }
});

Escapes.run();
