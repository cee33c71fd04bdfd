/**
 * Plugins written to hurt the host cost only their own requests: Node's event loop never waits on
 * an isolate, whatever the plugin does (breaking intrinsics, looping after an await, builtins V8
 * cannot stop, allocation bombs, WebAssembly memory), every other route and the admin API keep
 * answering, and a version V8 twice could not stop is quarantined until its file changes.
 * (What a hostile plugin costs an unrelated route's latency is measured in bench/.)
 */
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "undici";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, tempDir, type TestWeir } from "../support/weir.js";
import { adminPlugins, pluginFixture, poll } from "./support.js";

const hostile = pluginFixture("hostile.ts");
const limits = { memoryMb: 32, timeoutMs: 50, asyncTimeoutMs: 2000 };
const dir = tempDir("weir-hostile-");
const unstoppable = join(dir, "unstoppable.ts");
copyFileSync(pluginFixture("unstoppable.ts"), unstoppable);
/**
 * A copy of the hostile plugin for one group of routes: a version is quarantined on every entry
 * that runs it, so each group gets a bundle of its own.
 */
function hostileFor(group: string): string {
  const file = join(dir, `hostile-${group}.ts`);
  writeFileSync(file, readFileSync(hostile, "utf8") + `\n// ${group}\n`);
  return file;
}
const hostileCopy = hostileFor("refused");
const BOMBS = ["array-fill", "array-from", "string-spread", "sparse-sort", "deep-json"];

const Hostile = suite<{ up: TestUpstream; weir: TestWeir }>("hostile plugins");

Hostile.before(async (ctx) => {
  ctx.up = await startUpstream();
  const entry = (group: string) => ({ use: hostileFor(group), limits, permissions: { store: true } });
  ctx.weir = await startWeir({
    routes: [
      { name: "poison", match: { path: "/poison" }, upstream: ctx.up.url, plugins: [entry("poison")] },
      { name: "await", match: { path: "/await" }, upstream: ctx.up.url, plugins: [entry("await")] },
      // A bomb must fail on its memory limit, not on the time limit when the machine is busy.
      ...BOMBS.map((b) => ({ name: `bomb-${b}`, match: { path: `/bomb-${b}` }, upstream: ctx.up.url, plugins: [{ ...entry(`bomb-${b}`), limits: { ...limits, timeoutMs: 500 } }] })),
      { name: "refused", match: { path: "/refused" }, upstream: ctx.up.url, plugins: [{ use: hostileCopy, limits, permissions: { store: true } }] },
      { name: "nowasm", match: { path: "/nowasm" }, upstream: ctx.up.url, plugins: [entry("nowasm")] },
      { name: "loop", match: { path: "/loop" }, upstream: ctx.up.url, plugins: [entry("loop")] },
      { name: "wasm", match: { path: "/wasm" }, upstream: ctx.up.url, plugins: [{ use: pluginFixture("wasm-user.ts"), limits, permissions: { wasm: true } }] },
      { name: "unstoppable", match: { path: "/unstoppable" }, upstream: ctx.up.url, plugins: [{ use: unstoppable, limits: { memoryMb: 256, timeoutMs: 50 } }] },
      { name: "other-plugin", match: { path: "/other" }, upstream: ctx.up.url, plugins: [{ use: pluginFixture("noop.ts") }] },
      { name: "fast", match: { path: "/fast" }, upstream: ctx.up.url },
    ],
  });
});
Hostile.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

interface Answer { status: number; body: string; headers: Record<string, unknown>; ms: number }

async function get(url: string): Promise<Answer> {
  const started = performance.now();
  const res = await request(url);
  const body = await res.body.text();
  return { status: res.statusCode, body, headers: res.headers, ms: performance.now() - started };
}

/** Every other kind of route and the admin API answer. */
async function othersAnswer(weir: TestWeir): Promise<void> {
  assert.is((await get(`${weir.url}/fast/x`)).status, 200);
  assert.is((await get(`${weir.url}/other/x`)).status, 200);
  assert.is((await get(`${weir.admin}/health`)).status, 200);
  assert.is((await get(`${weir.admin}/plugins`)).status, 200);
}

async function errorsOf(weir: TestWeir, at: string): Promise<string[]> {
  return (await adminPlugins(weir.admin)).find((p) => p.at === at)!.errors.map((e) => e.message);
}

Hostile("a plugin that replaces Map.prototype.get with a loop fails only its own requests", async ({ weir }) => {
  for (let i = 0; i < 2; i++) {
    const r = await get(`${weir.url}/poison/poison-map`);
    assert.ok(r.status === 200 || r.status === 500, r.body);
    await othersAnswer(weir);
  }
});

Hostile("code that loops after an await (on the store, or on a microtask) is stopped by its time limit", async ({ weir }) => {
  for (const action of ["loop-after-await", "loop-after-microtask"]) {
    const bad = get(`${weir.url}/await/${action}`);
    await othersAnswer(weir);
    const r = await bad;
    assert.is(r.status, 500, r.body);
    assert.match((JSON.parse(r.body) as { error: string }).error, /the plugin "hostile" failed in onRequest/, r.body);
    assert.ok(r.ms < 2000, `${action} took ${r.ms.toFixed(0)} ms`);
  }
  const errors = await errorsOf(weir, "routes[1].plugins[0]");
  assert.ok(errors.filter((m) => /time limit \(limits\.timeoutMs: 50 ms\)/.test(m)).length >= 2, errors.join("\n"));
});

Hostile("allocation bombs fail at once with a message that says why, and the process's memory comes back", async ({ weir }) => {
  const round = async () => {
    for (const bomb of BOMBS) {
      const r = await get(`${weir.url}/bomb-${bomb}/${bomb}`);
      assert.is(r.status, 500, `${bomb}: ${r.body}`);
      assert.ok(r.ms < 1000, `${bomb} took ${r.ms.toFixed(0)} ms`);
      await othersAnswer(weir);
    }
  };
  await round(); // the first round also loads what the test itself needs
  for (const bomb of BOMBS) assert.is((await get(`${weir.url}/bomb-${bomb}/fine`)).status, 200, "the plugin still serves after a bomb");
  const rssBefore = process.memoryUsage().rss;
  await round();
  for (const bomb of BOMBS) {
    const view = (await adminPlugins(weir.admin)).find((p) => p.at === `routes[${2 + BOMBS.indexOf(bomb)}].plugins[0]`)!;
    assert.ok(view.errors.filter((e) => /more than a plugin limited to 32 MB can use|nests deeper/.test(e.message)).length === 2, JSON.stringify(view.errors));
  }
  const grown = process.memoryUsage().rss / rssBefore;
  assert.ok(grown < 1.2, `RSS grew ${((grown - 1) * 100).toFixed(0)}%`);
});

Hostile("a version that twice asked for an allocation that would take the process down is quarantined; a changed file lifts it", async ({ weir, up }) => {
  const at = "routes[7].plugins[0]";
  assert.is((await get(`${weir.url}/refused/array-fill`)).status, 500);
  assert.is((await adminPlugins(weir.admin)).find((p) => p.at === at)!.state, "active", "once is not enough");
  assert.is((await get(`${weir.url}/refused/array-fill`)).status, 500);
  const view = (await adminPlugins(weir.admin)).find((p) => p.at === at)! as unknown as { state: string; quarantined?: string };
  assert.is(view.state, "quarantined");
  assert.match(view.quarantined ?? "", /2 times within 10 minutes it did what takes a process down \(last: refused Array\.prototype\.fill with a length of 2147483647/);
  const seen = up.seen.length;
  const held = await get(`${weir.url}/refused/fine`);
  assert.is(held.status, 500);
  assert.is((JSON.parse(held.body) as { code: string }).code, "WEIR_ERR_PLUGIN_QUARANTINED");
  assert.is(up.seen.length, seen, "a quarantined plugin's request never reaches the upstream");
  await othersAnswer(weir);

  writeFileSync(hostileCopy, readFileSync(hostileCopy, "utf8").replace('version: "1.0.0"', 'version: "1.0.1"'));
  await weir.rt.plugins.reloadFrom(hostileCopy);
  const fixed = (await adminPlugins(weir.admin)).find((p) => p.at === at)!;
  assert.is(fixed.state, "active");
  assert.is(fixed.version, "1.0.1");
  assert.is((await get(`${weir.url}/refused/fine`)).status, 200);
});

Hostile("without permissions.wasm there is no WebAssembly, SharedArrayBuffer or FinalizationRegistry", async ({ weir }) => {
  for (const action of ["wasm-memory", "shared-buffer", "finalizer"]) {
    const r = await get(`${weir.url}/nowasm/${action}`);
    assert.is(r.status, 500, `${action}: ${r.body}`);
  }
  const errors = await errorsOf(weir, "routes[8].plugins[0]");
  for (const name of ["WebAssembly", "SharedArrayBuffer", "FinalizationRegistry"])
    assert.ok(errors.some((m) => m.includes(name)), `${name}: ${errors.join("\n")}`);
  // A plugin that asks for WebAssembly in its definition is refused an entry that does not grant it.
  try {
    const denied = await startWeir({ routes: [{ match: { path: "/" }, upstream: "http://127.0.0.1:9", plugins: [{ use: pluginFixture("wasm-user.ts") }] }] });
    await denied.stop();
    assert.unreachable("an entry without permissions.wasm loaded a plugin that asks for it");
  } catch (err) {
    assert.match(String((err as Error).message), /add permissions: \{ wasm: true \}/);
  }
});

Hostile("with permissions.wasm a module's memory must declare a maximum within the plugin's memoryMb", async ({ weir }) => {
  const ok = await get(`${weir.url}/wasm/bounded`);
  assert.is(ok.status, 200, ok.body);
  for (const action of ["unbounded", "huge", "js-memory"]) assert.is((await get(`${weir.url}/wasm/${action}`)).status, 500, action);
  const errors = await errorsOf(weir, "routes[10].plugins[0]");
  assert.ok(errors.some((m) => /must declare a maximum/.test(m)), errors.join("\n"));
  assert.ok(errors.some((m) => /at most 32 MB in all/.test(m)), errors.join("\n"));
});

Hostile("30 concurrent requests to a looping plugin cost only its own route; then it is skipped as degraded", async ({ weir }) => {
  const bad = Array.from({ length: 30 }, () => get(`${weir.url}/loop/loop`));
  for (let i = 0; i < 10; i++) await othersAnswer(weir);
  const answers = await Promise.all(bad);
  for (const a of answers) assert.is(a.status, 500, a.body);
  const view = (await adminPlugins(weir.admin)).find((p) => p.at === "routes[9].plugins[0]")!;
  assert.is(view.state, "degraded");
  const skipped = answers.filter((a) => /WEIR_ERR_PLUGIN_DEGRADED/.test(a.body)).length;
  assert.ok(skipped > 0 && view.failures < 30, `failures ${view.failures}, skipped ${skipped}`);
});

Hostile("a call V8 cannot stop is answered at its limit; the isolate is replaced; twice unstoppable, the version is quarantined", async ({ weir }) => {
  const at = "routes[11].plugins[0]";
  for (let i = 0; i < 2; i++) {
    const r = await get(`${weir.url}/unstoppable/bigint`);
    assert.is(r.status, 500, r.body);
    assert.ok(r.ms < 2000, `answered after ${r.ms.toFixed(0)} ms`);
    await othersAnswer(weir);
    // The old isolate keeps sorting on its thread; a second one serves meanwhile.
    await poll("a new isolate", async () => ((await adminPlugins(weir.admin)).find((p) => p.at === at)!.state === "active" ? true : undefined));
    assert.is((await get(`${weir.url}/unstoppable/fine`)).status, 200);
    await poll("the stuck isolate to be judged unstoppable", async () => ((await adminPlugins(weir.admin)).find((p) => p.at === at)!.errors.filter((e) => /could not stop it for 1000 ms of CPU more/.test(e.message)).length > i ? true : undefined), 15_000);
  }
  const view = (await adminPlugins(weir.admin)).find((p) => p.at === at)! as unknown as { state: string; quarantined?: string };
  assert.is(view.state, "quarantined");
  assert.match(view.quarantined ?? "", /could not stop it/);
});

Hostile.run();
