/**
 * ctx.metrics cannot grow the host without bound nor break a scrape: each plugin entry makes at
 * most `limits.maxMetricSeries` series (default 1,000), more are dropped and counted, and a
 * plugin's metric can never carry one of Weir's own names or a name another family's samples
 * carry; the request that wrote them is never failed for it. Fixture:
 * test/fixtures/plugins/metric-writer.ts (a plugin named "plugin").
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { fixturePath } from "../support/fixtures.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";
import { scrape } from "./support.js";

const writer = fixturePath("plugins", "metric-writer.ts");

interface Ctx { up: TestUpstream; weir: TestWeir; lines: Record<string, unknown>[] }
const Bounds = suite<Ctx>("plugin metric bounds");

Bounds.before(async (ctx) => {
  ctx.up = await startUpstream();
  ctx.lines = [];
  const sink = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split("\n")) if (l) ctx.lines.push(JSON.parse(l) as Record<string, unknown>); cb(); } });
  ctx.weir = await startWeir({
    routes: [
      { name: "wide", match: { path: "/wide" }, upstream: ctx.up.url, plugins: [{ use: writer }] },
      { name: "narrow", match: { path: "/narrow" }, upstream: ctx.up.url, plugins: [{ use: writer, limits: { maxMetricSeries: 10 } }] },
      { name: "names", match: { path: "/names" }, upstream: ctx.up.url, plugins: [{ use: writer }] },
    ],
  }, { logger: pino({ level: "warn" }, sink) });
});
Bounds.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

async function get(weir: TestWeir, path: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(weir.url + path, { headers });
  await res.arrayBuffer();
  return res.status;
}

/** A scrape that Prometheus would take: every family declared once, every series once. */
async function wholeScrape(weir: TestWeir) {
  const s = await scrape(weir.admin);
  assert.is(s.status, 200, s.text.slice(0, 300));
  const typed = s.text.split("\n").filter((l) => l.startsWith("# TYPE ")).map((l) => l.split(" ")[2]!);
  assert.is(new Set(typed).size, typed.length, `a family declared twice: ${typed.filter((n, i) => typed.indexOf(n) !== i).join(", ")}`);
  const keys = s.exposition.samples.map((x) => x.name + JSON.stringify(Object.entries(x.labels).sort()));
  assert.is(new Set(keys).size, keys.length, "a series repeated");
  return s.exposition;
}

const dropped = (e: Awaited<ReturnType<typeof wholeScrape>>, entry: string, reason: string) =>
  e.value("weir_plugin_metric_series_dropped_total", { plugin: "plugin", entry, reason });

Bounds("an entry makes at most 1,000 series by default; more are dropped and counted, and the request is served", async ({ weir, lines }) => {
  assert.is(await get(weir, "/wide/many?n=1500", { "x-prefix": "w" }), 200);
  const e = await wholeScrape(weir);
  assert.is(e.samples.filter((x) => x.name === "weir_plugin_hits" && x.labels.k?.startsWith("w")).length, 1000);
  assert.is(e.value("weir_plugin_metric_series", { plugin: "plugin", entry: "routes[0].plugins[0]" }), 1000);
  assert.is(dropped(e, "routes[0].plugins[0]", "limit"), 500);
  // Series that exist keep counting.
  assert.is(await get(weir, "/wide/many?n=1", { "x-prefix": "w" }), 200);
  assert.is((await wholeScrape(weir)).value("weir_plugin_hits", { k: "w0" }), 2);
  const logged = lines.filter((l) => l.code === "WEIR_ERR_PLUGIN_METRIC_DROPPED" && l.reason === "limit");
  assert.is(logged.length, 1, "the first drop is logged, the rest only counted");
  assert.is(logged[0]!.plugin, "plugin");
  assert.is(logged[0]!.version, "2.0.0");
  assert.is(logged[0]!.hook, "onRequest");
  assert.is(logged[0]!.limit, "limits.maxMetricSeries=1000");
});

Bounds("limits.maxMetricSeries sets an entry's own bound", async ({ weir }) => {
  assert.is(await get(weir, "/narrow/many?n=50", { "x-prefix": "n" }), 200);
  const e = await wholeScrape(weir);
  assert.is(e.samples.filter((x) => x.name === "weir_plugin_hits" && x.labels.k?.startsWith("n")).length, 10);
  assert.is(dropped(e, "routes[1].plugins[0]", "limit"), 40);
});

Bounds("distinct names are bounded by the same series limit", async ({ weir }) => {
  assert.is(await get(weir, "/narrow/names?n=3000", { "x-prefix": "x" }), 200);
  const e = await wholeScrape(weir);
  assert.is([...e.types.keys()].filter((n) => n.startsWith("weir_plugin_name_x")).length, 0, "the narrow entry had no series left");
  assert.is(dropped(e, "routes[1].plugins[0]", "limit"), 40 + 3000);
});

Bounds("a metric named like one of Weir's own is refused and /metrics stays whole", async ({ weir }) => {
  assert.is(await get(weir, "/names/collide"), 200);
  const e = await wholeScrape(weir);
  assert.ok(e.samples.filter((x) => x.name === "weir_plugin_errors_total").every((x) => "hook" in x.labels), "only Weir's own weir_plugin_errors_total");
  assert.is(e.types.get("weir_plugin_duration_seconds"), "histogram");
  assert.is(dropped(e, "routes[2].plugins[0]", "collision"), 2);
});

Bounds("a counter never takes the name of a histogram's sample", async ({ weir }) => {
  assert.is(await get(weir, "/names/shadow"), 200);
  const e = await wholeScrape(weir);
  assert.is(e.types.get("weir_plugin_lat"), "histogram");
  assert.is(e.types.get("weir_plugin_lat_count"), undefined);
  assert.is(e.value("weir_plugin_lat_count"), 1);
  assert.is(dropped(e, "routes[2].plugins[0]", "collision"), 3);
});

Bounds("invalid names, reserved labels, `le` on a histogram, too many labels and negative counts are dropped as invalid", async ({ weir }) => {
  assert.is(await get(weir, "/names/bad"), 200);
  const e = await wholeScrape(weir);
  assert.is(dropped(e, "routes[2].plugins[0]", "invalid"), 5);
  assert.is(e.types.get("weir_plugin_ok_total"), undefined);
  assert.is(e.types.get("weir_plugin_ok_seconds"), undefined);
});

Bounds("a reload does not grant an entry a fresh allowance", async ({ weir }) => {
  await weir.rt.reload();
  assert.is(await get(weir, "/narrow/many?n=5", { "x-prefix": "after" }), 200);
  const e = await wholeScrape(weir);
  assert.is(e.samples.filter((x) => x.name === "weir_plugin_hits" && x.labels.k?.startsWith("after")).length, 0);
});

Bounds.run();
