/**
 * Active health checks against real backends: detection within interval x unhealthyAfter + one
 * interval, recovery after healthyAfter passes, a hanging health endpoint, transitions logged
 * once, and the all-down answer that never contacts a known-dead target.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "undici";
import { startUpstream, type TestUpstream, type UpstreamHandler } from "../support/upstream.js";
import { load, startLoggedWeir, targetsOf, until, sleep } from "./support.js";

/** A backend whose /health answers `state.health` (a status, or "hang"). */
function backend(state: { health: number | "hang" }): UpstreamHandler {
  return (req, res) => {
    if (req.url === "/health") {
      if (state.health === "hang") return; // never answers
      res.writeHead(state.health, { "content-length": 0 });
      return res.end();
    }
    res.writeHead(200, { "content-length": 2 });
    res.end("ok");
  };
}
const traffic = (u: TestUpstream) => u.seen.filter((r) => r.url !== "/health").length;

const Health = suite("active health checks");

Health("a failing target is out within interval x unhealthyAfter + one interval, and back after healthyAfter passes", async () => {
  const a = { health: 200 as number | "hang" };
  const [ua, ub] = [await startUpstream(backend(a)), await startUpstream(backend({ health: 200 }))];
  const weir = await startLoggedWeir({
    upstreams: { api: { targets: [ua.url, ub.url], healthCheck: { path: "/health", interval: "100ms", timeout: "50ms", unhealthyAfter: 2, healthyAfter: 2 } } },
    routes: [{ match: { path: "/" }, upstream: "api" }],
  });
  try {
    await sleep(150);
    assert.ok((await targetsOf(weir.admin, "api")).every((t) => t.healthy));
    a.health = 500;
    const down = await until(async () => !(await targetsOf(weir.admin, "api"))[0]!.healthy, 2000, "unhealthy");
    // interval x unhealthyAfter + one interval, plus slack for timers on a loaded machine.
    assert.ok(down <= 100 * 2 + 100 + 150, `detected after ${down.toFixed(0)} ms`);
    const before = traffic(ua);
    await load(`${weir.url}/x`, 20);
    assert.is(traffic(ua), before, "an unhealthy target gets no traffic");
    a.health = 200;
    const up = await until(async () => (await targetsOf(weir.admin, "api"))[0]!.healthy, 2000, "healthy again");
    assert.ok(up <= 100 * 2 + 100 + 150, `recovered after ${up.toFixed(0)} ms`);
    await load(`${weir.url}/x`, 20);
    assert.ok(traffic(ua) > before, "a recovered target gets traffic again");
    const transitions = weir.lines.filter((l) => l.msg === "target is unhealthy" || l.msg === "target is healthy again");
    assert.equal(transitions.map((l) => l.msg), ["target is unhealthy", "target is healthy again"], "each transition logged once");
    assert.is(transitions[0]!.target, ua.url);
  } finally { await weir.stop(); await ua.close(); await ub.close(); }
});

Health("a health endpoint that hangs fails after the timeout", async () => {
  const ua = await startUpstream(backend({ health: "hang" }));
  const weir = await startLoggedWeir({
    upstreams: { api: { targets: [ua.url], healthCheck: { interval: "100ms", timeout: "60ms", unhealthyAfter: 2 } } },
    routes: [{ match: { path: "/" }, upstream: "api" }],
  });
  try {
    const down = await until(async () => !(await targetsOf(weir.admin, "api"))[0]!.healthy, 2000, "unhealthy");
    assert.ok(down < 800, `detected after ${down.toFixed(0)} ms`);
    const reason = weir.lines.find((l) => l.msg === "target is unhealthy")?.reason;
    assert.match(String(reason), /no answer within 60 ms/);
  } finally { await weir.stop(); await ua.close(); }
});

Health("with every target down the answer is a fast 503 in JSON and no target is contacted", async () => {
  const ups = [await startUpstream(backend({ health: 503 })), await startUpstream(backend({ health: 503 }))];
  const weir = await startLoggedWeir({
    upstreams: { api: { targets: ups.map((u) => u.url), healthCheck: { interval: "50ms", timeout: "40ms", unhealthyAfter: 1 } } },
    routes: [{ match: { path: "/" }, upstream: "api" }],
  });
  try {
    await until(async () => (await targetsOf(weir.admin, "api")).every((t) => !t.healthy), 2000, "all unhealthy");
    const started = performance.now();
    const res = await request(`${weir.url}/x`);
    const ms = performance.now() - started;
    const body = (await res.body.json()) as { error: string; code: string; requestId: string };
    assert.is(res.statusCode, 503);
    assert.is(body.code, "WEIR_ERR_NO_HEALTHY_TARGET");
    assert.is(body.requestId, res.headers["x-request-id"]);
    // No connect attempt, no timeout: far below timeouts.connect (2 s) even on a loaded machine.
    assert.ok(ms < 200, `answered in ${ms.toFixed(1)} ms`);
    for (const u of ups) assert.is(traffic(u), 0);
  } finally { await weir.stop(); await Promise.all(ups.map((u) => u.close())); }
});

Health("new targets start healthy and checks start at once", async () => {
  const ua = await startUpstream(backend({ health: 200 }));
  const weir = await startLoggedWeir({
    upstreams: { api: { targets: [ua.url], healthCheck: { interval: "10s" } } },
    routes: [{ match: { path: "/" }, upstream: "api" }],
  });
  try {
    const res = await request(`${weir.url}/x`);
    await res.body.text();
    assert.is(res.statusCode, 200);
    await until(() => ua.seen.some((r) => r.url === "/health"), 1000, "a first check well before the 10 s interval");
    assert.is(ua.seen.find((r) => r.url === "/health")!.headers["user-agent"], "weir-health-check");
  } finally { await weir.stop(); await ua.close(); }
});

Health("with startHealthy: false a new target takes no traffic until it has passed healthyAfter checks", async () => {
  const ua = await startUpstream(backend({ health: 200 }));
  const weir = await startLoggedWeir({
    upstreams: { api: { targets: [ua.url], healthCheck: { path: "/health", interval: "100ms", timeout: "50ms", healthyAfter: 2, startHealthy: false } } },
    routes: [{ match: { path: "/" }, upstream: "api" }],
  });
  try {
    const first = await request(`${weir.url}/x`);
    await first.body.text();
    assert.is(first.statusCode, 503, "not yet checked: no healthy target");
    assert.is(traffic(ua), 0);
    await until(async () => (await targetsOf(weir.admin, "api"))[0]!.healthy, 2000, "healthy after its checks");
    const later = await request(`${weir.url}/x`);
    assert.is(await later.body.text(), "ok");
    assert.is(traffic(ua), 1);
  } finally { await weir.stop(); await ua.close(); }
});

Health.run();
