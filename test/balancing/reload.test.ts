/**
 * State kept across a config reload: a target that is the same URL in the next generation keeps
 * its health verdict, ejection and latency estimate; its health checker keeps running; a target
 * that leaves the config loses its checker; removing healthCheck does not leave a target stuck
 * unhealthy.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { WeirConfig } from "../../core/config/schema.js";
import { startUpstream, type UpstreamHandler } from "../support/upstream.js";
import { load, startLoggedWeir, targetsOf, until } from "./support.js";

const Reload = suite("balancing state across a reload");
const healthFails: UpstreamHandler = (req, res) => { res.writeHead(req.url === "/health" ? 500 : 200, { "content-length": 0 }); res.end(); };
const ok: UpstreamHandler = (_req, res) => { res.writeHead(200, { "content-length": 0 }); res.end(); };

Reload("an unhealthy target stays unhealthy, ejected stays ejected and latency is kept after rt.reload()", async () => {
  const [sick, fine, third] = [await startUpstream(healthFails), await startUpstream(ok), await startUpstream(ok)];
  const config = (targets: string[], routeName: string): WeirConfig => ({
    upstreams: { api: { targets, balance: "p2c-ewma", healthCheck: { interval: "100ms", timeout: "50ms", unhealthyAfter: 1, healthyAfter: 2 }, outlier: { consecutiveFailures: 1, ejectFor: "1m" } } },
    routes: [{ name: routeName, match: { path: "/" }, upstream: "api" }],
  });
  const weir = await startLoggedWeir(config([sick.url, fine.url], "before"));
  try {
    await until(async () => !(await targetsOf(weir.admin, "api"))[0]!.healthy, 2000, "unhealthy");
    await load(`${weir.url}/x`, 5);
    const fineTarget = weir.rt.generation.upstreams.get("api")!.targets[1]!;
    const latency = fineTarget.latency.ms;
    assert.ok(latency > 0, "latency measured");
    fineTarget.ejectedUntil = Date.now() + 60_000; // as if outlier detection had ejected it
    const checksBefore = weir.rt.health.get(weir.rt.generation.upstreams.get("api")!.targets[0]!)!.checks;

    weir.write(config([sick.url, fine.url, third.url], "after"));
    const gen = await weir.rt.reload();
    assert.is(gen.routes[0]!.name, "after");
    const [t0, t1, t2] = gen.upstreams.get("api")!.targets;
    assert.is(t0!.healthy, false, "health verdict kept");
    assert.is(t1, fineTarget, "the same Target object");
    assert.ok(t1!.ejected, "ejection kept");
    assert.is(t1!.latency.ms, latency, "latency estimate kept");
    assert.is(t2!.healthy, true, "a new target starts healthy");
    const view = await targetsOf(weir.admin, "api");
    assert.equal(view.map((t) => [t.healthy, t.ejected]), [[false, false], [true, true], [true, false]]);
    // The checker kept counting instead of starting over: no "healthy" flicker, no second warning.
    await until(() => weir.rt.health.get(t0!)!.checks > checksBefore + 1, 2000, "checks continue");
    assert.is(weir.lines.filter((l) => l.msg === "target is unhealthy").length, 1);
    const answers = await load(`${weir.url}/x`, 10);
    assert.ok(answers.every((a) => a.status === 200));
    assert.is(sick.seen.filter((r) => r.url !== "/health").length, 0);
  } finally { await weir.stop(); await Promise.all([sick, fine, third].map((u) => u.close())); }
});

Reload("a target that leaves the config loses its health checker; removing healthCheck marks targets healthy", async () => {
  const [a, b] = [await startUpstream(healthFails), await startUpstream(ok)];
  const hc = { interval: "100ms", timeout: "50ms", unhealthyAfter: 1 };
  const weir = await startLoggedWeir({
    upstreams: { api: { targets: [a.url, b.url], healthCheck: hc } },
    routes: [{ match: { path: "/" }, upstream: "api" }],
  });
  try {
    const [ta, tb] = weir.rt.generation.upstreams.get("api")!.targets;
    await until(() => !ta!.healthy, 2000, "unhealthy");
    weir.write({ upstreams: { api: { targets: [a.url] } }, routes: [{ match: { path: "/" }, upstream: "api" }] });
    await weir.rt.reload();
    assert.is(weir.rt.health.get(ta!), undefined, "no checks without healthCheck");
    assert.is(weir.rt.health.get(tb!), undefined, "no checks for a target no generation uses");
    assert.is(ta!.healthy, true, "not stuck unhealthy once checks are gone");
    const seen = a.seen.length;
    await new Promise((r) => setTimeout(r, 250));
    assert.is(a.seen.length, seen, "checks stopped");
  } finally { await weir.stop(); await a.close(); await b.close(); }
});

Reload.run();
