/** examples/gateway/weir.yaml as shipped: the README's walk-through, against two real backends. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import { pluginMetricsSnapshot, resetPluginMetrics } from "../../core/plugin-host/plugin-metrics.js";
import { ROOT } from "../support/fixtures.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";

const Gateway = suite("examples/gateway");
let b1: TestUpstream, b2: TestUpstream, weir: TestWeir;
Gateway.before(async () => {
  b1 = await startUpstream();
  b2 = await startUpstream();
  const text = readFileSync(`${ROOT}/examples/gateway/weir.yaml`, "utf8");
  weir = await startWeir(text, { env: { GATEWAY_PORT: "0", GATEWAY_ADMIN_PORT: "0", BACKEND_1_PORT: String(b1.port), BACKEND_2_PORT: String(b2.port) } });
});
Gateway.after(async () => { await weir.stop(); await b1.close(); await b2.close(); });

const get = async (headers: Record<string, string> = {}) => {
  const res = await request(weir.url + "/api/orders", { headers });
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
};

Gateway("walks through the README: 401, balanced 200s with the consumer, 429 past the limit, own quota per consumer", async () => {
  const none = await get();
  assert.is(none.status, 401);
  assert.is([...b1.seen, ...b2.seen].filter((s) => s.url.startsWith("/api")).length, 0);
  const alice = { "x-api-key": "alice-key-0001", "x-consumer": "mallory" };
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await get(alice);
    statuses.push(r.status);
    assert.is(r.headers["ratelimit-limit"], "5");
    if (r.status === 200) assert.is(r.headers["x-served-for"], "alice");
    else assert.ok(Number(r.headers["retry-after"]) >= 1);
  }
  assert.equal(statuses, [200, 200, 200, 200, 200, 429]);
  // Health checks (/health) reach the backends too: count only the proxied requests.
  const proxied = (u: TestUpstream) => u.seen.filter((s) => s.url.startsWith("/api/orders"));
  assert.ok(proxied(b1).length >= 2 && proxied(b2).length >= 2, `balanced: ${proxied(b1).length}/${proxied(b2).length}`);
  for (const s of [...proxied(b1), ...proxied(b2)]) {
    assert.is(s.headers["x-consumer"], "alice");
    assert.is(s.headers["x-api-key"], undefined);
    assert.type(s.headers["x-gateway-request"], "string");
  }
  assert.is((await get({ "x-api-key": "bob-key-0002" })).status, 200);
  await sleep(50);
  const d = pluginMetricsSnapshot().find((f) => f.name === "weir_analytics_request_duration_seconds")!;
  const count = (consumer: string, cls: string) => d.series.find((s) => s.labels.consumer === consumer && s.labels.status_class === cls && s.labels.route === "orders")?.value;
  assert.is(count("alice", "2xx"), 5);
  assert.is(count("alice", "4xx"), 1);
  assert.is(count("anonymous", "4xx"), 1);
  assert.is(count("bob", "2xx"), 1);
});

Gateway("the README's walk-through, run as written, gives the analytics counts it shows on GET /metrics", async () => {
  // A Weir of its own: the quotas start full and nothing is counted yet, as for a reader who
  // just started the example (plugin metrics live in the process, shared with the test above).
  resetPluginMetrics();
  const text = readFileSync(`${ROOT}/examples/gateway/weir.yaml`, "utf8");
  const own = await startWeir(text, { env: { GATEWAY_PORT: "0", GATEWAY_ADMIN_PORT: "0", BACKEND_1_PORT: String(b1.port), BACKEND_2_PORT: String(b2.port) } });
  try {
    const call = async (headers: Record<string, string> = {}) => {
      const res = await request(own.url + "/api/orders", { headers });
      await res.body.text();
      return res.statusCode;
    };
    const alice = { "x-api-key": "alice-key-0001" };
    const bob = { "x-api-key": "bob-key-0002" };
    assert.is(await call(), 401); // 1
    for (let i = 0; i < 2; i++) assert.is(await call(alice), 200); // 2
    assert.is(await call(alice), 200); // 3
    const loop: number[] = [];
    for (let i = 0; i < 6; i++) loop.push(await call(alice)); // 4
    assert.equal(loop, [200, 200, 429, 429, 429, 429]);
    assert.is(await call(alice), 429);
    assert.is(await call(bob), 200);
    assert.is(await call({ ...bob, "x-consumer": "alice" }), 200); // 5
    await sleep(100); // onLog runs after the response
    const exposition = await (await request(`${own.admin}/metrics`)).body.text();
    const readme = readFileSync(`${ROOT}/examples/gateway/README.md`, "utf8");
    const step6 = readme.slice(readme.indexOf("**6. Analytics.**"));
    const shown = [...step6.matchAll(/^# (weir_analytics_request_duration_seconds_count\{.*\} \d+)$/gm)].map((m) => m[1]!);
    assert.ok(shown.length >= 4, "the README shows the counts");
    for (const line of shown) assert.ok(exposition.split("\n").includes(line), `the README shows "${line}"; /metrics has:\n${exposition.split("\n").filter((l) => l.startsWith("weir_analytics_request_duration_seconds_count")).join("\n")}`);
  } finally {
    await own.stop();
  }
});

Gateway.run();
