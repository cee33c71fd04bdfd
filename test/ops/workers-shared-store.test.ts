/**
 * `workers: 2` without `store.redis`: the workers' store lives in the primary (ipc-store.ts,
 * store-host.ts), so a rate limit admits its limit once per instance, not once per worker,
 * ctx.store counts without gaps or repeats across workers, and the counts survive a worker that
 * dies. Then the store's bound: a primary that does not answer costs a call 100 ms, no more.
 */
import { EventEmitter } from "node:events";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { stringify } from "yaml";
import { request } from "undici";
import { IpcStore, type IpcChannel } from "../../core/cluster/ipc-store.js";
import type { StoreReply, StoreRequest } from "../../core/cluster/messages.js";
import { StoreHost } from "../../core/cluster/store-host.js";
import { ErrorCodes } from "../../core/errors.js";
import type { WeirConfig } from "../../core/config/schema.js";
import { runWeir, type CliProcess } from "../support/cli.js";
import { fixturePath } from "../support/fixtures.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { tempDir } from "../support/weir.js";
import { until } from "./support.js";

interface Cluster { weir: CliProcess; url: string; admin: string }

async function startCluster(config: WeirConfig): Promise<Cluster> {
  const file = join(tempDir("weir-shared-store-"), "weir.yaml");
  writeFileSync(file, stringify({ listen: { port: 0, host: "127.0.0.1" }, admin: { port: 0, host: "127.0.0.1" }, workers: 2, shutdownTimeout: "2s", ...config }));
  const weir = runWeir(["start", "-c", file]);
  const url = (await weir.waitFor(/weir: listening on (http:\/\/127\.0\.0\.1:\d+) \(2 workers\)\n/, 30_000))[1]!;
  const admin = (await weir.waitFor(/weir: admin API on (http:\/\/127\.0\.0\.1:\d+)\n/))[1]!;
  return { weir, url, admin };
}

async function stopCluster(c: Cluster): Promise<void> {
  c.weir.child.kill("SIGTERM");
  await c.weir.exited;
}

/** A GET on a new connection each time, so that the primary hands requests to both workers. */
async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const res = await request(url, { headers: { connection: "close", ...headers }, headersTimeout: 5000, bodyTimeout: 5000 });
  await res.body.dump();
  return { status: res.statusCode, headers: res.headers };
}

/** `total` requests made by `connections` loops at once. */
async function burst<T>(total: number, connections: number, one: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (next < total) out.push(await one(next++));
  }));
  return out;
}

function workersThatAnswered(weir: CliProcess): Set<unknown> {
  const lines = weir.output().split("\n").filter((l) => l.startsWith('{"') && l.includes('"log":"access"'));
  return new Set(lines.map((l) => (JSON.parse(l) as { worker?: unknown }).worker));
}

async function workerPids(admin: string): Promise<{ index: number; pid: number | null; ready: boolean }[]> {
  const res = await fetch(`${admin}/status`, { signal: AbortSignal.timeout(8000) });
  // While a worker is being replaced, the primary may answer without the list (503).
  return ((await res.json()) as { workers?: { index: number; pid: number | null; ready: boolean }[] }).workers ?? [];
}

const counter = fixturePath("plugins", "store-counter.ts");
const config = (upstream: string): WeirConfig => ({
  routes: [
    { name: "limited", match: { path: "/limited" }, upstream, plugins: [{ use: "rate-limit", config: { limit: 50, window: "1h", by: "route" } }] },
    { name: "counted", match: { path: "/counted" }, upstream, plugins: [{ use: counter, permissions: { store: true } }] },
  ],
});

const Shared = suite("workers: 2 share one store in the primary");
let up: TestUpstream;
Shared.before(async () => { up = await startUpstream((_req, res) => { res.writeHead(200, { "content-length": 2 }); res.end("ok"); }); });
Shared.after(async () => { await up.close(); });

Shared("a rate limit of 50 admits exactly 50 of 200 requests spread over both workers", async () => {
  const c = await startCluster(config(up.url));
  try {
    const answers = await burst(200, 16, () => get(`${c.url}/limited`));
    const statuses = answers.map((a) => a.status);
    assert.is(statuses.filter((s) => s === 200).length, 50, "admitted");
    assert.is(statuses.filter((s) => s === 429).length, 150, "refused");
    const refused = answers.find((a) => a.status === 429)!;
    assert.is(refused.headers["ratelimit-limit"], "50");
    assert.is(refused.headers["ratelimit-remaining"], "0");
    assert.ok(Number(refused.headers["retry-after"]) >= 1);
    await until(() => workersThatAnswered(c.weir).size === 2, 5000, "access lines of both workers");
    assert.equal([...workersThatAnswered(c.weir)].sort(), [0, 1], "both workers answered");
    assert.not.match(c.weir.output(), /store unavailable|counts rate limits on its own/);
  } finally {
    await stopCluster(c);
  }
});

Shared("ctx.store counts 1..N across both workers, without a gap or a repeat", async () => {
  const c = await startCluster(config(up.url));
  try {
    const answers = await burst(120, 12, () => get(`${c.url}/counted`, { "x-key": "hits" }));
    assert.ok(answers.every((a) => a.headers["x-store-error"] === undefined), "no store error");
    const counts = answers.map((a) => Number(a.headers["x-count"])).sort((a, b) => a - b);
    assert.equal(counts, Array.from({ length: 120 }, (_, i) => i + 1));
    await until(() => workersThatAnswered(c.weir).size === 2, 5000, "access lines of both workers");
  } finally {
    await stopCluster(c);
  }
});

Shared("a worker that dies and is restarted finds the counts and the limit where they were", async () => {
  const c = await startCluster(config(up.url));
  try {
    const first = await burst(30, 4, () => get(`${c.url}/counted`, { "x-key": "k" }));
    assert.is(Math.max(...first.map((a) => Number(a.headers["x-count"]))), 30);
    const limited = await burst(60, 4, () => get(`${c.url}/limited`));
    assert.is(limited.filter((a) => a.status === 200).length, 50);

    const victim = (await workerPids(c.admin))[0]!.pid!;
    process.kill(victim, "SIGKILL");
    await until(async () => (await workerPids(c.admin)).filter((w) => w.ready && w.pid !== null && w.pid !== victim).length === 2, 10_000, "the worker replaced");
    // The new worker's first requests pay its warm-up (isolates, JIT); on a loaded machine one
    // store call could outlast its 100 ms bound there, which is the documented outage path, not
    // what this test is about. Warm both workers on the spent limit first (itself asserted).
    const warm = await burst(8, 4, () => get(`${c.url}/limited`));
    assert.equal(warm.map((a) => a.status), Array(8).fill(429), "the limit is still spent after the restart");

    const after = await burst(30, 4, () => get(`${c.url}/counted`, { "x-key": "k" }));
    assert.equal(after.map((a) => Number(a.headers["x-count"])).sort((a, b) => a - b), Array.from({ length: 30 }, (_, i) => i + 31));
    const still = await burst(20, 4, () => get(`${c.url}/limited`));
    assert.equal(still.map((a) => a.status), Array(20).fill(429), "the limit is still spent after the restart");
  } finally {
    await stopCluster(c);
  }
});

Shared.run();

/** Both ends of an IPC channel in one process: the worker's IpcStore and the primary's StoreHost. */
function channelPair(host: StoreHost | null): IpcChannel & { sent: StoreRequest[] } {
  const events = new EventEmitter();
  const sent: StoreRequest[] = [];
  return {
    sent,
    connected: true,
    send(m: StoreRequest) {
      sent.push(m);
      host?.answer(m, (r: StoreReply) => setImmediate(() => events.emit("message", r)));
      return true;
    },
    on: (e, l) => events.on(e, l),
    off: (e, l) => events.off(e, l),
  };
}

const Bound = suite("IpcStore");

Bound("answers get, set, incr, delete and rateLimit from the primary's one store", async () => {
  const host = new StoreHost();
  const a = new IpcStore(channelPair(host));
  const b = new IpcStore(channelPair(host));
  try {
    await a.set("x", "1", 0);
    assert.is(await b.get("x"), "1");
    assert.is(await a.incr("n", 2, 0), 2);
    assert.is(await b.incr("n", 3, 0), 5);
    await b.delete("x");
    assert.is(await a.get("x"), null);
    const ds = [await a.rateLimit("r", 2, 60_000), await b.rateLimit("r", 2, 60_000), await a.rateLimit("r", 2, 60_000)];
    assert.equal(ds.map((d) => d.allowed), [true, true, false]);
  } finally {
    await a.close(); await b.close(); await host.close();
  }
});

Bound("a primary that does not answer fails the call in ~100 ms with WEIR_ERR_STORE_UNAVAILABLE", async () => {
  const store = new IpcStore(channelPair(null));
  try {
    const t0 = performance.now();
    const err = await store.rateLimit("r", 1, 1000).then(() => null, (e: Error & { code?: string }) => e);
    const ms = performance.now() - t0;
    assert.is(err?.code, ErrorCodes.STORE_UNAVAILABLE);
    assert.match(err!.message, /did not answer within 100 ms/);
    assert.ok(ms >= 95 && ms < 300, `${ms} ms`);
  } finally {
    await store.close();
  }
});

Bound("a worker whose primary is gone fails at once", async () => {
  const channel = { ...channelPair(null), connected: false };
  const store = new IpcStore(channel);
  const err = await store.incr("n", 1, 0).then(() => null, (e: Error & { code?: string }) => e);
  assert.is(err?.code, ErrorCodes.STORE_UNAVAILABLE);
  assert.is(channel.sent.length, 0);
  await store.close();
});

Bound.run();
