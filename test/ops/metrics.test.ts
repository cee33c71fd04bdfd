/**
 * GET /metrics: Prometheus text that a strict parser accepts, with the series docs/operations.md names and
 * counts that match the requests actually sent, by route and status; plugin durations and
 * failures by plugin and hook; target health; isolate memory; reload counts.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { startUpstream } from "../support/upstream.js";
import { startWeir } from "../support/weir.js";
import type { WeirConfig } from "../../core/config/schema.js";
import { getMany, OPS_PROBE, scrape } from "./support.js";

const Metrics = suite("metrics");

const config = (upstream: string): WeirConfig => ({
  upstreams: { api: { targets: [upstream] } },
  routes: [
    { name: "plain", match: { path: "/plain" }, upstream: "api" },
    { name: "probed", match: { path: "/probed" }, upstream: "api", plugins: [{ use: OPS_PROBE }] },
  ],
});

Metrics("the exposition parses as Prometheus text and has every series the docs name", async () => {
  const up = await startUpstream();
  const weir = await startWeir(config(up.url));
  try {
    await getMany(`${weir.url}/probed/x`, 2);
    await getMany(`${weir.url}/probed/boom`, 1);
    const { status, type, exposition: m } = await scrape(weir.admin);
    assert.is(status, 200);
    assert.ok(type.startsWith("text/plain; version=0.0.4"), type);
    for (const [name, kind] of [
      ["weir_requests_total", "counter"], ["weir_request_duration_seconds", "histogram"],
      ["weir_upstream_target_healthy", "gauge"], ["weir_plugin_duration_seconds", "histogram"],
      ["weir_plugin_errors_total", "counter"], ["weir_plugin_heap_used_bytes", "gauge"],
      ["weir_config_reloads_total", "counter"], ["weir_config_generation", "gauge"],
    ] as const) assert.is(m.types.get(name), kind, name);
    assert.is(m.value("weir_upstream_target_healthy", { upstream: "api", target: up.url }), 1);
    assert.ok(m.value("weir_plugin_heap_used_bytes", { plugin: "ops-probe" }) > 0, "isolate heap is reported");
    assert.ok(m.sum("process_resident_memory_bytes") > 0, "process metrics too");
  } finally {
    await weir.stop();
    await up.close();
  }
});

Metrics("requests are counted by route and status, and the histogram counts every routed request", async () => {
  const up = await startUpstream();
  const weir = await startWeir(config(up.url));
  try {
    await getMany(`${weir.url}/plain/a`, 7);
    await getMany(`${weir.url}/probed/b`, 3);
    await getMany(`${weir.url}/probed/boom`, 2); // the plugin throws: 500
    await getMany(`${weir.url}/nowhere`, 4); // no route: 404
    const { exposition: m } = await scrape(weir.admin);
    assert.is(m.value("weir_requests_total", { route: "plain", status: "200" }), 7);
    assert.is(m.value("weir_requests_total", { route: "probed", status: "200" }), 3);
    assert.is(m.value("weir_requests_total", { route: "probed", status: "500" }), 2);
    assert.is(m.value("weir_requests_total", { route: "", status: "404" }), 4);
    assert.is(m.value("weir_request_duration_seconds_count", { route: "plain" }), 7);
    assert.is(m.value("weir_request_duration_seconds_bucket", { route: "plain", le: "+Inf" }), 7);
    assert.is(m.value("weir_request_duration_seconds_count", { route: "probed" }), 5);
    // Buckets are cumulative and end at the count.
    const buckets = m.samples.filter((s) => s.name === "weir_request_duration_seconds_bucket" && s.labels.route === "plain").map((s) => s.value);
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]! >= buckets[i - 1]!, "cumulative buckets");
  } finally {
    await weir.stop();
    await up.close();
  }
});

Metrics("plugin hook durations and failures are counted by plugin and hook", async () => {
  const up = await startUpstream();
  const weir = await startWeir(config(up.url));
  try {
    await getMany(`${weir.url}/probed/ok`, 5);
    await getMany(`${weir.url}/probed/boom`, 3);
    const { exposition: m } = await scrape(weir.admin);
    assert.is(m.value("weir_plugin_duration_seconds_count", { plugin: "ops-probe", hook: "onRequest" }), 8);
    // onResponse runs for the 5 proxied answers; the failed plugin is not called again on its own 500.
    assert.ok(m.value("weir_plugin_duration_seconds_count", { plugin: "ops-probe", hook: "onResponse" }) >= 5);
    assert.is(m.value("weir_plugin_errors_total", { plugin: "ops-probe", hook: "onRequest" }), 3);
    assert.ok(m.value("weir_plugin_duration_seconds_sum", { plugin: "ops-probe", hook: "onRequest" }) > 0);
  } finally {
    await weir.stop();
    await up.close();
  }
});

Metrics("the analytics built-in's series appear on /metrics, counted by route, consumer and status class", async () => {
  const up = await startUpstream();
  const weir = await startWeir({
    upstreams: { api: { targets: [up.url] } },
    routes: [{ name: "measured", match: { path: "/measured" }, upstream: "api", plugins: [{ use: "key-auth", config: { keys: { k1: "carol" } } }, { use: "analytics", config: {} }] }],
  });
  try {
    await getMany(`${weir.url}/measured/x`, 3, { "x-api-key": "k1" });
    await getMany(`${weir.url}/measured/x`, 2);
    // onLog runs after the responses, off the request path: poll until it has been counted.
    let m = (await scrape(weir.admin)).exposition;
    for (let i = 0; i < 50 && m.sum("weir_analytics_request_duration_seconds_count") < 5; i++) {
      await new Promise((r) => setTimeout(r, 20));
      m = (await scrape(weir.admin)).exposition;
    }
    assert.is(m.types.get("weir_analytics_request_duration_seconds"), "histogram");
    assert.is(m.value("weir_analytics_request_duration_seconds_count", { route: "measured", consumer: "carol", status_class: "2xx" }), 3);
    assert.is(m.sum("weir_analytics_request_duration_seconds_count"), 5);
  } finally { await weir.stop(); await up.close(); }
});

Metrics("reloads are counted by result and the generation gauge follows the swap", async () => {
  const up = await startUpstream();
  const weir = await startWeir(config(up.url));
  try {
    await weir.rt.reload();
    await weir.rt.reload();
    weir.write("routes: [ { upstream: nowhere } ]\n");
    await weir.rt.reload().then(() => assert.unreachable("an invalid config was accepted"), () => undefined);
    const { exposition: m } = await scrape(weir.admin);
    assert.is(m.value("weir_config_reloads_total", { result: "success" }), 2);
    assert.is(m.value("weir_config_reloads_total", { result: "failure" }), 1);
    assert.is(m.value("weir_config_generation"), 3);
    assert.is(m.value("weir_config_reload_duration_seconds_count"), 2);
  } finally {
    await weir.stop();
    await up.close();
  }
});

Metrics.run();
