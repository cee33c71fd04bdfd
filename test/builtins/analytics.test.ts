/** analytics: schema, behaviour in the sandbox (what reaches the host registry), through Weir. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { setTimeout as sleep } from "node:timers/promises";
import { loadPlugin } from "../../core/plugin-host/testing.js";
import { pluginMetricsSnapshot, renderPluginMetrics, resetPluginMetrics } from "../../core/plugin-host/plugin-metrics.js";
import { assertNamesKey, builtin, configProblems, startGateway } from "./support.js";

const plugin = builtin("analytics");
const family = (name: string) => pluginMetricsSnapshot().find((f) => f.name === name);

const Schema = suite("analytics schema");
Schema("takes an empty config and refuses any key", async () => {
  assert.equal(await configProblems({ use: "analytics", config: {} }), []);
  assertNamesKey(await configProblems({ use: "analytics", config: { sample: 0.5 } }), "config.sample");
});
Schema.run();

const Behaviour = suite("analytics in the sandbox");
Behaviour.before.each(() => resetPluginMetrics());
Behaviour("counts requests, latency and bytes per route, consumer and status class", async () => {
  const p = await loadPlugin(plugin);
  try {
    for (const [status, consumer, ms] of [[200, "alice", 12], [201, "alice", 30], [404, null, 2], [503, "bob", 800]] as const) {
      const r = await p.log({ route: "orders", status, consumer, timing: { total: ms, upstream: ms / 2 }, bodyBytes: 100, headers: { "content-length": "10" } });
      assert.is(r.error, null);
    }
    const d = family("weir_analytics_request_duration_seconds")!;
    assert.is(d.type, "histogram");
    const alice = d.series.find((s) => s.labels.consumer === "alice" && s.labels.status_class === "2xx")!;
    assert.equal(alice.labels, { consumer: "alice", route: "orders", status_class: "2xx" });
    assert.is(alice.value, 2);
    assert.ok(Math.abs(alice.sum! - 0.042) < 1e-9);
    assert.is(d.series.find((s) => s.labels.consumer === "anonymous")!.labels.status_class, "4xx");
    assert.is(d.series.find((s) => s.labels.consumer === "bob")!.labels.status_class, "5xx");
    const bytesOut = family("weir_analytics_response_bytes_total")!;
    assert.is(bytesOut.series.find((s) => s.labels.consumer === "alice")!.value, 200);
    assert.is(family("weir_analytics_request_bytes_total")!.series.find((s) => s.labels.consumer === "alice")!.value, 20);
    const text = renderPluginMetrics();
    assert.match(text, /# TYPE weir_analytics_request_duration_seconds histogram/);
    assert.match(text, /weir_analytics_request_duration_seconds_bucket\{consumer="alice",route="orders",status_class="2xx",le="0.025"\} 1/);
    assert.match(text, /weir_analytics_request_duration_seconds_count\{consumer="alice",route="orders",status_class="2xx"\} 2/);
  } finally { await p.close(); }
});
Behaviour.run();

const Integration = suite("analytics through Weir");
Integration.before.each(() => resetPluginMetrics());
Integration("counts requests answered by the upstream and refused by a plugin, after the response", async () => {
  const g = await startGateway([{ use: "key-auth", config: { keys: { k1: "alice" } } }], { plugins: [{ use: "analytics" }] } as never);
  try {
    for (let i = 0; i < 3; i++) assert.is((await g.get("/x", { "x-api-key": "k1" })).status, 200);
    assert.is((await g.get("/x")).status, 401);
    await sleep(50); // onLog runs after the response, in a batch
    const d = family("weir_analytics_request_duration_seconds")!;
    assert.is(d.series.find((s) => s.labels.consumer === "alice" && s.labels.status_class === "2xx")?.value, 3);
    assert.is(d.series.find((s) => s.labels.consumer === "anonymous" && s.labels.status_class === "4xx")?.value, 1);
    assert.ok(d.series.every((s) => s.labels.route === "r"));
    assert.ok((family("weir_analytics_response_bytes_total")!.series.find((s) => s.labels.consumer === "alice")?.value ?? 0) > 0);
  } finally { await g.close(); }
});

/** Sends one request, waits for its onLog (and the store write it may make), returns the body's bytes. */
async function sent(g: Awaited<ReturnType<typeof startGateway>>, path: string, headers: Record<string, string> = {}): Promise<{ status: number; bytes: number }> {
  const r = await g.get(path, headers);
  await sleep(40);
  return { status: r.status, bytes: Buffer.byteLength(r.body) };
}

Integration("counts the bytes written: Weir's own answers (401, 429) and chunked bodies included", async () => {
  // The upstream answers /chunked without Content-Length (chunked), the rest with it.
  const handler = (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => {
    if (req.url === "/chunked") { res.writeHead(200, { "content-type": "text/plain" }); res.write("a".repeat(1000)); res.write("b".repeat(234)); res.end(); return; }
    res.writeHead(200, { "content-type": "text/plain", "content-length": 5 });
    res.end("hello");
  };
  const g = await startGateway([
    { use: "key-auth", config: { keys: { k1: "alice" } } },
    { use: "rate-limit", config: { limit: 2, window: "1m", by: "consumer" } },
  ], { handler, plugins: [{ use: "analytics", config: { flushEvery: 1 } }] } as never);
  try {
    const refused = await sent(g, "/x");
    assert.is(refused.status, 401);
    const chunked = await sent(g, "/chunked", { "x-api-key": "k1" });
    assert.is(chunked.status, 200);
    assert.is(chunked.bytes, 1234);
    const plain = await sent(g, "/x", { "x-api-key": "k1" });
    assert.is(plain.bytes, 5);
    const limited = await sent(g, "/x", { "x-api-key": "k1" });
    assert.is(limited.status, 429);
    const bytes = (consumer: string, cls: string) => family("weir_analytics_response_bytes_total")?.series.find((s) => s.labels.consumer === consumer && s.labels.status_class === cls)?.value;
    assert.ok(refused.bytes > 0 && limited.bytes > 0);
    assert.is(bytes("anonymous", "4xx"), refused.bytes);
    assert.is(bytes("alice", "2xx"), 1234 + 5);
    assert.is(bytes("alice", "4xx"), limited.bytes);
    // The same counts in the totals GET /analytics answers.
    const a = (await (await fetch(`${g.weir.admin}/analytics`)).json()) as { totals: { requests: number; responseBytes: number } };
    assert.is(a.totals.requests, 4);
    assert.is(a.totals.responseBytes, refused.bytes + 1234 + 5 + limited.bytes);
  } finally { await g.close(); }
});
Integration.run();
