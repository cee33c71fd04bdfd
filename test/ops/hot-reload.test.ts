/**
 * Config hot reload: the file watcher and POST /reload swap in a new generation without failing
 * a request under continuous load; an invalid config (bad YAML, schema errors, a missing plugin)
 * keeps the old one serving and is reported with key paths; editors that write by rename and
 * bursts of writes cause one reload; a deleted then re-created config is picked up again.
 */
import { renameSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { pino } from "pino";
import { stringify } from "yaml";
import { startUpstream, type UpstreamHandler } from "../support/upstream.js";
import { startWeir, withTestDefaults, type TestWeir } from "../support/weir.js";
import type { WeirConfig } from "../../core/config/schema.js";
import { scrape, sleep, until } from "./support.js";

const tagged = (tag: string): UpstreamHandler => (_req, res) => { res.writeHead(200, { "content-type": "text/plain", "content-length": tag.length }); res.end(tag); };

const config = (a: string, b: string, which: "a" | "b", n = 0): WeirConfig => ({
  upstreams: { a: { targets: [a] }, b: { targets: [b] } },
  routes: [
    { name: `main-${n}`, match: { path: "/" }, upstream: which },
    ...Array.from({ length: n }, (_, i) => ({ name: `extra-${i}`, match: { path: `/extra/${i}` }, upstream: "a" })),
  ],
});

/** Runs `workers` request loops against `url` until `stop()`; bounded to `maxMs` whatever happens. */
function loadLoops(url: string, workers: number, maxMs = 30_000) {
  let running = true;
  const statuses = new Map<string, number>();
  const bodies = new Set<string>();
  let total = 0;
  const end = Date.now() + maxMs;
  const loops = Array.from({ length: workers }, async () => {
    while (running && Date.now() < end) {
      let key: string;
      try {
        const res = await fetch(url);
        const body = await res.text();
        bodies.add(body);
        key = String(res.status);
      } catch (err) {
        key = `error: ${(err as Error).message}`;
      }
      total++;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
    }
  });
  return {
    bodies,
    async stop() {
      running = false;
      await Promise.all(loops);
      return { total, statuses };
    },
  };
}

function loggedWeir(config: WeirConfig) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>); cb(); } });
  return startWeir(config, { watchConfig: true, logger: pino({ level: "info" }, sink) }).then((weir) => ({ weir, lines }));
}

async function reloadCount(weir: TestWeir): Promise<number> {
  return (await scrape(weir.admin)).exposition.value("weir_config_reloads_total", { result: "success" });
}

const Reload = suite("hot reload under load");

Reload("20 reloads through POST /reload and the file watcher while 8 request loops run: no request fails", async () => {
  const [a, b] = [await startUpstream(tagged("a")), await startUpstream(tagged("b"))];
  const weir = await startWeir(config(a.url, b.url, "a"), { watchConfig: true });
  const load = loadLoops(`${weir.url}/x`, 8);
  try {
    for (let i = 1; i <= 20; i++) {
      weir.write(config(a.url, b.url, i % 2 ? "b" : "a", i));
      if (i % 2) {
        const res = await fetch(`${weir.admin}/reload`, { method: "POST" });
        assert.is(res.status, 200, await res.text());
      } else {
        const before = weir.rt.generation.id;
        await until(() => weir.rt.generation.id > before, 5000, `the watcher to reload (#${i})`);
      }
      await sleep(60);
    }
  } finally {
    const { total, statuses } = await load.stop();
    await weir.stop();
    await Promise.all([a.close(), b.close()]);
    assert.ok(total > 200, `only ${total} requests were sent`);
    assert.equal([...statuses.keys()], ["200"], `statuses: ${JSON.stringify([...statuses])}`);
    assert.equal([...load.bodies].sort(), ["a", "b"], "both configs served");
  }
});

const Invalid = suite("an invalid config keeps the old one serving");

Invalid("bad YAML, a schema error, a missing plugin and an empty file (caught mid-write): POST /reload answers 400 with key paths, the log says why, requests keep flowing", async () => {
  const [a, b] = [await startUpstream(tagged("a")), await startUpstream(tagged("b"))];
  const { weir, lines } = await loggedWeir(config(a.url, b.url, "a"));
  try {
    const good = weir.rt.generation.id;
    const cases: [string, RegExp][] = [
      ["routes: [ { upstream: a\n", /weir\.yaml: \(root\): /],
      [stringify(withTestDefaults({ ...config(a.url, b.url, "b"), routes: [{ upstream: "nowhere" }] })), /: routes\[0\]\.upstream: unknown upstream "nowhere"/],
      [stringify(withTestDefaults({ ...config(a.url, b.url, "b"), routes: [{ upstream: "b", plugins: [{ use: "./no-such-plugin.ts" }] }] })), /: routes\[0\]\.plugins\[0\]\.use: /],
      // Valid at start (all defaults), but on a reload it would drop every route.
      ["\n", /weir\.yaml: \(root\): the config file is empty/],
    ];
    for (const [text, expected] of cases) {
      weir.write(text);
      const res = await fetch(`${weir.admin}/reload`, { method: "POST" });
      const body = (await res.json()) as { errors: string[] };
      assert.is(res.status, 400);
      assert.ok(body.errors.some((e) => expected.test(e)), `${JSON.stringify(body.errors)} has ${expected}`);
      assert.is(weir.rt.generation.id, good, "the old generation still serves");
      assert.is(await (await fetch(`${weir.url}/x`)).text(), "a");
    }
    // The watcher saw those writes too (debounced, so at least once): each failure is logged with
    // its key paths, none is applied.
    await until(() => lines.filter((l) => l.msg === "config reload failed; the previous config keeps serving").length >= 5, 5000, "failure logs");
    const failure = lines.find((l) => Array.isArray(l.problems) && (l.problems as string[]).some((p) => p.startsWith("routes[0].upstream:")));
    assert.ok(failure, "a log line names routes[0].upstream");
    assert.is(weir.rt.generation.id, good);
    assert.is((await scrape(weir.admin)).exposition.value("weir_config_reloads_total", { result: "success" }), 0);
  } finally {
    await weir.stop();
    await Promise.all([a.close(), b.close()]);
  }
});

const Watcher = suite("config file watcher");

Watcher("an editor's write-to-temp-then-rename causes exactly one reload", async () => {
  const [a, b] = [await startUpstream(tagged("a")), await startUpstream(tagged("b"))];
  const weir = await startWeir(config(a.url, b.url, "a"), { watchConfig: true });
  try {
    const tmp = join(weir.dir, ".weir.yaml.swp");
    writeFileSync(tmp, stringify(withTestDefaults(config(a.url, b.url, "b"))));
    renameSync(tmp, weir.configFile);
    await until(async () => (await (await fetch(`${weir.url}/x`)).text()) === "b", 5000, "the renamed config to serve");
    await sleep(500);
    assert.is(await reloadCount(weir), 1);
  } finally {
    await weir.stop();
    await Promise.all([a.close(), b.close()]);
  }
});

Watcher("a burst of 10 writes within 100 ms causes one reload, of the last content", async () => {
  const [a, b] = [await startUpstream(tagged("a")), await startUpstream(tagged("b"))];
  const weir = await startWeir(config(a.url, b.url, "a"), { watchConfig: true });
  try {
    for (let i = 0; i < 10; i++) {
      weir.write(config(a.url, b.url, i === 9 ? "b" : "a", i));
      await sleep(10);
    }
    await until(async () => (await reloadCount(weir)) >= 1, 5000, "a reload");
    await sleep(500);
    assert.is(await reloadCount(weir), 1);
    assert.is(weir.rt.generation.routes.length, 10, "the last write's 1 + 9 routes");
    assert.is(await (await fetch(`${weir.url}/x`)).text(), "b");
  } finally {
    await weir.stop();
    await Promise.all([a.close(), b.close()]);
  }
});

Watcher("a deleted config keeps serving and is logged; re-created, it is reloaded", async () => {
  const [a, b] = [await startUpstream(tagged("a")), await startUpstream(tagged("b"))];
  const { weir, lines } = await loggedWeir(config(a.url, b.url, "a"));
  try {
    unlinkSync(weir.configFile);
    await until(() => lines.some((l) => String(l.msg).startsWith("config file deleted")), 5000, "the deletion to be logged");
    assert.is(await (await fetch(`${weir.url}/x`)).text(), "a");
    assert.is(await reloadCount(weir), 0);
    await sleep(200);
    weir.write(config(a.url, b.url, "b"));
    await until(async () => (await (await fetch(`${weir.url}/x`)).text()) === "b", 5000, "the re-created config to serve");
    assert.is(await reloadCount(weir), 1);
  } finally {
    await weir.stop();
    await Promise.all([a.close(), b.close()]);
  }
});

const Admin = suite("admin token");

Admin("with admin.token set, calls without it or with a wrong one get 401 JSON; the right one works; a reload changes it", async () => {
  const a = await startUpstream(tagged("a"));
  const cfg = (token: string): WeirConfig => ({ ...config(a.url, a.url, "a"), admin: { port: 0, host: "127.0.0.1", token } });
  const weir = await startWeir(withTestDefaults({ listen: { port: 0, host: "127.0.0.1" }, ...cfg("s3cret") }));
  try {
    for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "s3cret" }, { authorization: "Bearer s3cret-and-more" }] as Record<string, string>[]) {
      for (const path of ["/metrics", "/status", "/reload"]) {
        const res = await fetch(`${weir.admin}${path}`, { method: path === "/reload" ? "POST" : "GET", headers });
        assert.is(res.status, 401, `${path} with ${JSON.stringify(headers)}`);
        const body = (await res.json()) as { error: string; requestId: string };
        assert.match(body.error, /admin token/);
        assert.type(body.requestId, "string");
      }
    }
    assert.is((await scrape(weir.admin, "s3cret")).status, 200);
    assert.is((await fetch(`${weir.admin}/status`, { headers: { authorization: "Bearer s3cret" } })).status, 200);
    weir.write({ ...cfg("n3w"), admin: { port: 0, host: "127.0.0.1", token: "n3w" } });
    assert.is((await fetch(`${weir.admin}/reload`, { method: "POST", headers: { authorization: "Bearer s3cret" } })).status, 200);
    assert.is((await fetch(`${weir.admin}/status`, { headers: { authorization: "Bearer s3cret" } })).status, 401);
    assert.is((await fetch(`${weir.admin}/status`, { headers: { authorization: "Bearer n3w" } })).status, 200);
  } finally {
    await weir.stop();
    await a.close();
  }
});

Admin("the admin API listens on 127.0.0.1 by default", async () => {
  const a = await startUpstream(tagged("a"));
  const { stringify: y } = await import("yaml");
  const weir = await startWeir(`listen: { port: 0, host: 127.0.0.1 }\nadmin: { port: 0 }\n${y({ upstreams: { a: { targets: [a.url] } }, routes: [{ upstream: "a" }] })}`);
  try {
    assert.match(weir.admin, /^http:\/\/127\.0\.0\.1:\d+$/);
  } finally {
    await weir.stop();
    await a.close();
  }
});

Reload.run();
Invalid.run();
Watcher.run();
Admin.run();
