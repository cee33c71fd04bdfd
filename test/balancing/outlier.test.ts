/**
 * Passive outlier detection from live traffic: ejection after consecutive failures, recovery
 * when ejectFor ends, the maxEjectedPercent bound, and a success resetting the count.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { startUpstream, type UpstreamHandler } from "../support/upstream.js";
import { startWeir } from "../support/weir.js";
import { load, sleep, targetsOf } from "./support.js";

const ok: UpstreamHandler = (_req, res) => { res.writeHead(200, { "content-length": 2 }); res.end("ok"); };
const fail: UpstreamHandler = (_req, res) => { res.writeHead(500, { "content-length": 4 }); res.end("fail"); };

const Outlier = suite("passive outlier detection");

Outlier("a target failing 3 times in a row is ejected for ejectFor, then takes traffic again", async () => {
  const [bad, good] = [await startUpstream(fail), await startUpstream(ok)];
  const weir = await startWeir({
    upstreams: { api: { targets: [bad.url, good.url], outlier: { consecutiveFailures: 3, ejectFor: "300ms", maxEjectedPercent: 50 } } },
    routes: [{ match: { path: "/" }, upstream: "api" }],
  });
  try {
    await load(`${weir.url}/x`, 6); // round-robin: 3 to each
    assert.is(bad.seen.length, 3);
    const view = await targetsOf(weir.admin, "api");
    assert.is(view[0]!.ejected, true);
    assert.is(view[1]!.ejected, false);
    const answers = await load(`${weir.url}/x`, 20);
    assert.is(bad.seen.length, 3, "no traffic while ejected");
    assert.ok(answers.every((a) => a.status === 200));
    await sleep(350);
    await load(`${weir.url}/x`, 4);
    assert.ok(bad.seen.length > 3, "back in rotation after ejectFor");
  } finally { await weir.stop(); await bad.close(); await good.close(); }
});

Outlier("a target ejected again soon after returning stays out longer", async () => {
  const [bad, good] = [await startUpstream(fail), await startUpstream(ok)];
  const weir = await startWeir({
    upstreams: { api: { targets: [bad.url, good.url], outlier: { consecutiveFailures: 1, ejectFor: "200ms" } } },
    routes: [{ match: { path: "/" }, upstream: "api" }],
  });
  try {
    await load(`${weir.url}/x`, 2);
    const t = weir.rt.generation.upstreams.get("api")!.targets[0]!;
    const first = t.ejectedUntil - Date.now();
    assert.ok(first > 0 && first <= 200, `first ejection ${first} ms`);
    await sleep(220);
    await load(`${weir.url}/x`, 2); // fails again at once
    const second = t.ejectedUntil - Date.now();
    assert.ok(second > 200 && second <= 400, `second ejection ${second} ms (2 x ejectFor)`);
  } finally { await weir.stop(); await bad.close(); await good.close(); }
});

Outlier("never more than maxEjectedPercent of the targets are ejected", async () => {
  const ups = [await startUpstream(fail), await startUpstream(fail), await startUpstream(fail), await startUpstream(fail)];
  const weir = await startWeir({
    upstreams: { api: { targets: ups.map((u) => u.url), outlier: { consecutiveFailures: 1, ejectFor: "10s", maxEjectedPercent: 50 } } },
    routes: [{ match: { path: "/" }, upstream: "api" }],
  });
  try {
    await load(`${weir.url}/x`, 20);
    const ejected = (await targetsOf(weir.admin, "api")).filter((t) => t.ejected).length;
    assert.is(ejected, 2);
  } finally { await weir.stop(); await Promise.all(ups.map((u) => u.close())); }
});

Outlier("a flapping backend (alternating 500 and 200) is not ejected: a success resets the count", async () => {
  let n = 0;
  const flap = await startUpstream((req, res) => (n++ % 2 === 0 ? fail : ok)(req, res, Buffer.alloc(0)));
  const weir = await startWeir({
    upstreams: { api: { targets: [flap.url], outlier: { consecutiveFailures: 2, ejectFor: "10s" } } },
    routes: [{ match: { path: "/" }, upstream: "api" }],
  });
  try {
    const answers = await load(`${weir.url}/x`, 20);
    assert.is(answers.filter((a) => a.status === 500).length, 10);
    assert.is((await targetsOf(weir.admin, "api"))[0]!.ejected, false);
  } finally { await weir.stop(); await flap.close(); }
});

Outlier.run();
