/**
 * A plugin that keeps failing is marked and then skipped: 5 failures in a row show
 * `state: "degraded"` in GET /plugins and every failure is counted in
 * `weir_plugin_errors_total{plugin,hook}`; while degraded the plugin is not called for a cooldown
 * (5 s at first) and its entry's onError answers for it; after the cooldown it is tried again, and
 * one success brings it back to "active" (the error count stays, it is a counter).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "undici";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";
import { adminPlugins, pluginFixture } from "./support.js";

const Health = suite<{ up: TestUpstream; weir: TestWeir }>("plugin health: degraded after repeated failures");

Health.before(async (ctx) => {
  ctx.up = await startUpstream();
  ctx.weir = await startWeir({ routes: [{ match: { path: "/" }, upstream: ctx.up.url, plugins: [{ use: pluginFixture("flaky.ts") }] }] });
});
Health.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

async function hit(weir: TestWeir, fail: boolean): Promise<number> {
  const res = await request(`${weir.url}/x`, { headers: fail ? { "x-fail": "1" } : {} });
  await res.body.dump();
  return res.statusCode;
}

/** The value of one series of GET /metrics, or undefined when the series is absent. */
async function metric(weir: TestWeir, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const text = await (await request(`${weir.admin}/metrics`)).body.text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(name + "{")) continue;
    const inner = line.slice(name.length + 1, line.indexOf("}"));
    const have = inner.split(",");
    if (want.every((w) => have.includes(w))) return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return undefined;
}

const flaky = async (weir: TestWeir) => (await adminPlugins(weir.admin)).find((p) => p.name === "flaky")!;

Health("four failures in a row leave the plugin active, the fifth marks it degraded", async ({ weir }) => {
  assert.is(await hit(weir, false), 200);
  for (let i = 1; i <= 4; i++) {
    assert.is(await hit(weir, true), 500);
    assert.is((await flaky(weir)).state, "active", `after ${i} failures`);
  }
  assert.is(await hit(weir, true), 500);
  const view = await flaky(weir);
  assert.is(view.state, "degraded");
  assert.is(view.failures, 5);
  assert.is(view.errors.at(-1)!.hook, "onRequest");
  assert.match(view.errors.at(-1)!.message, /asked to fail/);
});

Health("weir_plugin_errors_total counts each failure by plugin and hook", async ({ weir }) => {
  assert.is(await metric(weir, "weir_plugin_errors_total", { plugin: "flaky", hook: "onRequest" }), 5);
  assert.is((await flaky(weir)).state, "degraded");
  assert.is(await metric(weir, "weir_plugin_degraded", { plugin: "flaky" }), 1, "the degraded state is on /metrics too");
});

Health("a degraded plugin is skipped for its cooldown: onError answers, the plugin is not called", async ({ weir, up }) => {
  const before = up.seen.length;
  const calls = (await flaky(weir)).calls;
  const res = await request(`${weir.url}/x`);
  const body = (await res.body.json()) as { error: string; code: string };
  assert.is(res.statusCode, 500, "onError: closed answers 500 without running the plugin");
  assert.is(body.code, "WEIR_ERR_PLUGIN_DEGRADED");
  assert.match(body.error, /the plugin "flaky" failed in onRequest/);
  assert.is(up.seen.length, before, "the request did not reach the upstream");
  const view = await flaky(weir);
  assert.is(view.calls, calls, "the plugin was not called");
  assert.is(view.state, "degraded");
  assert.is(await metric(weir, "weir_plugin_errors_total", { plugin: "flaky", hook: "onRequest" }), 5, "a skip is not a new failure");
});

Health("after the cooldown the plugin is tried again, and one success brings it back to active", async ({ weir, up }) => {
  await new Promise((r) => setTimeout(r, 5_100));
  const before = up.seen.length;
  assert.is(await hit(weir, false), 200);
  assert.is(up.seen.length, before + 1);
  assert.is(up.seen.at(-1)!.headers["x-flaky"], "ok");
  const view = await flaky(weir);
  assert.is(view.state, "active");
  assert.is(view.failures, 5, "the failure count is kept");
  assert.is(await metric(weir, "weir_plugin_degraded", { plugin: "flaky" }), 0);
  assert.is(await metric(weir, "weir_plugin_errors_total", { plugin: "flaky", hook: "onRequest" }), 5);
});

Health("failures interleaved with successes never mark the plugin degraded", async ({ weir }) => {
  for (let i = 0; i < 12; i++) await hit(weir, i % 3 !== 2); // fail, fail, pass, ...
  assert.is((await flaky(weir)).state, "active");
  assert.is(await metric(weir, "weir_plugin_errors_total", { plugin: "flaky", hook: "onRequest" }), 13);
});

Health.run();
