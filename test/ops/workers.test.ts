/**
 * `workers: 2` with the real `weir` command: both workers serve the shared listener, /metrics
 * merges their counts, POST /reload reaches both, a worker killed with SIGKILL is replaced while
 * the listener keeps serving, and SIGTERM drains every worker and exits 0.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { stringify } from "yaml";
import { request } from "undici";
import { runWeir, type CliProcess } from "../support/cli.js";
import { startUpstream, type TestUpstream, type UpstreamHandler } from "../support/upstream.js";
import { tempDir } from "../support/weir.js";
import { rawRequest } from "../support/raw-http.js";
import type { WeirConfig } from "../../core/config/schema.js";
import { scrape, sleep, until } from "./support.js";

const tagged = (tag: string, delayMs = 0): UpstreamHandler => (_req, res) => {
  setTimeout(() => { res.writeHead(200, { "content-type": "text/plain", "content-length": tag.length }); res.end(tag); }, delayMs);
};

interface Cluster { weir: CliProcess; url: string; admin: string; file: string; write(c: WeirConfig): void }

async function startCluster(config: WeirConfig): Promise<Cluster> {
  const dir = tempDir("weir-workers-");
  const file = join(dir, "weir.yaml");
  const write = (c: WeirConfig) => writeFileSync(file, stringify({ listen: { port: 0, host: "127.0.0.1" }, admin: { port: 0, host: "127.0.0.1" }, workers: 2, shutdownTimeout: "5s", ...c }));
  write(config);
  const weir = runWeir(["start", "-c", file]);
  const url = (await weir.waitFor(/weir: listening on (http:\/\/127\.0\.0\.1:\d+) \(2 workers\)\n/, 30_000))[1]!;
  const admin = (await weir.waitFor(/weir: admin API on (http:\/\/127\.0\.0\.1:\d+)\n/))[1]!;
  return { weir, url, admin, file, write };
}

/** A GET on a new connection each time, so that the primary hands it to the next worker. */
async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await request(url, { headers: { connection: "close" }, headersTimeout: 5000, bodyTimeout: 5000 });
  return { status: res.statusCode, body: await res.body.text() };
}

function accessLines(weir: CliProcess): Record<string, unknown>[] {
  return weir.output().split("\n").filter((l) => l.startsWith('{"') && l.includes('"log":"access"')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

type WorkerInfo = { index: number; pid: number | null; ready: boolean; restarts: number };
async function status(admin: string): Promise<{ workers: WorkerInfo[] }> {
  const res = await fetch(`${admin}/status`, { signal: AbortSignal.timeout(8000) }).catch((err: Error & { cause?: Error }) => {
    throw new Error(`GET ${admin}/status: ${err.message} (${err.cause?.message ?? "no cause"})`);
  });
  const body = (await res.json()) as { workers?: WorkerInfo[] };
  return { workers: body.workers ?? [] };
}

const Workers = suite("workers: 2");
let up: TestUpstream;
let up2: TestUpstream;
Workers.before(async () => { up = await startUpstream(tagged("one")); up2 = await startUpstream(tagged("two")); });
Workers.after(async () => { await up.close(); await up2.close(); });

const routeTo = (target: string): WeirConfig => ({ upstreams: { api: { targets: [target] } }, routes: [{ name: "all", match: { path: "/" }, upstream: "api" }] });

Workers("both workers serve, and /metrics counts every request once across them", async () => {
  const c = await startCluster(routeTo(up.url));
  try {
    for (let i = 0; i < 40; i++) assert.is((await get(`${c.url}/n/${i}`)).status, 200);
    const port = Number(new URL(c.url).port);
    for (let i = 0; i < 6; i++) assert.is((await rawRequest(port, "TRACE / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).status, 405);
    await until(() => accessLines(c.weir).length >= 46, 5000, "46 access lines");
    const byWorker = new Map<unknown, number>();
    for (const l of accessLines(c.weir)) byWorker.set(l.worker, (byWorker.get(l.worker) ?? 0) + 1);
    assert.equal([...byWorker.keys()].sort(), [0, 1], "both workers answered");
    const { exposition: m, status: code } = await scrape(c.admin);
    assert.is(code, 200);
    assert.is(m.value("weir_requests_total", { route: "all", status: "200" }), 40);
    assert.is(m.value("weir_requests_total", { route: "", status: "405" }), 6);
    assert.is(m.value("weir_request_duration_seconds_count", { route: "all" }), 40);
    assert.is(m.value("weir_request_duration_seconds_bucket", { route: "all", le: "+Inf" }), 40);
    assert.is(m.value("weir_upstream_target_healthy", { upstream: "api", target: up.url }), 1);
    assert.is(m.value("weir_workers", { state: "ready" }), 2);
    assert.is(m.value("weir_config_generation"), 1);
  } finally {
    c.weir.child.kill("SIGTERM");
    await c.weir.exited;
  }
});

Workers("POST /reload reaches every worker, and a broken config is refused with its key path", async () => {
  const c = await startCluster(routeTo(up.url));
  try {
    c.write(routeTo(up2.url));
    const res = await fetch(`${c.admin}/reload`, { method: "POST" });
    assert.equal(await res.json(), { generation: 2 });
    for (let i = 0; i < 10; i++) assert.is((await get(`${c.url}/x`)).body, "two");
    c.write({ ...routeTo(up.url), routes: [{ upstream: "missing" }] });
    const bad = await fetch(`${c.admin}/reload`, { method: "POST" });
    assert.is(bad.status, 400);
    assert.match(JSON.stringify(await bad.json()), /routes\[0\]\.upstream: unknown upstream \\"missing\\"/);
    for (let i = 0; i < 6; i++) assert.is((await get(`${c.url}/x`)).body, "two");
    const { exposition: m } = await scrape(c.admin);
    // The primary's file watcher saw both writes too: at least one of each.
    assert.ok(m.value("weir_config_reloads_total", { result: "success" }) >= 1);
    assert.ok(m.value("weir_config_reloads_total", { result: "failure" }) >= 1);
  } finally {
    c.weir.child.kill("SIGTERM");
    await c.weir.exited;
  }
});

Workers("a worker killed with SIGKILL under load is replaced, and the listener never stops serving", async () => {
  const c = await startCluster(routeTo(up.url));
  try {
    const before = await status(c.admin);
    const victim = before.workers[0]!.pid!;
    let running = true;
    const results: { at: number; ok: boolean }[] = [];
    const end = Date.now() + 20_000;
    const loops = Array.from({ length: 4 }, async () => {
      while (running && Date.now() < end) {
        const at = Date.now();
        try { results.push({ at, ok: (await get(`${c.url}/x`)).status === 200 }); } catch { results.push({ at, ok: false }); }
      }
    });
    await sleep(300);
    const killedAt = Date.now();
    process.kill(victim, "SIGKILL");
    await until(async () => (await status(c.admin)).workers.length === 2 && (await status(c.admin)).workers.every((w) => w.ready && w.pid !== null && w.pid !== victim), 10_000, "a new worker");
    await sleep(300);
    running = false;
    await Promise.all(loops);
    const after = await status(c.admin);
    assert.is(after.workers[0]!.restarts, 1);
    assert.is.not(after.workers[0]!.pid, victim);
    // Only requests already in flight on the killed worker may fail; everything after is served.
    const failed = results.filter((r) => !r.ok);
    assert.ok(failed.length <= 4, `${failed.length} requests failed`);
    assert.ok(failed.every((r) => r.at <= killedAt + 50), "no request started after the kill failed");
    assert.ok(results.filter((r) => r.at > killedAt).length > 20, "requests kept flowing after the kill");
    assert.match(c.weir.output(), /"msg":"worker died; restarting it"/);
    const { exposition: m } = await scrape(c.admin);
    assert.is(m.value("weir_worker_restarts_total"), 1);
  } finally {
    c.weir.child.kill("SIGTERM");
    await c.weir.exited;
  }
});

Workers("admin calls racing a worker's death do not take the primary down (a send to a dying worker fails with EPIPE)", async () => {
  const c = await startCluster(routeTo(up.url));
  try {
    for (let round = 0; round < 3; round++) {
      const victim = (await status(c.admin)).workers[0]!.pid!;
      process.kill(victim, "SIGKILL");
      // Every call is forwarded to a worker over IPC: some reach the dying one.
      const answers = await Promise.all(Array.from({ length: 30 }, () => fetch(`${c.admin}/routes`).then((r) => r.status, () => 0)));
      assert.ok(answers.every((s) => s === 200 || s === 503 || s === 504), `answers: ${answers.join(",")}`);
      await until(async () => (await status(c.admin)).workers.every((w) => w.ready && w.pid !== victim), 10_000, "a new worker");
    }
    assert.is((await fetch(`${c.admin}/health`)).status, 200);
    assert.is((await get(`${c.url}/x`)).status, 200);
  } finally {
    c.weir.child.kill("SIGTERM");
    await c.weir.exited;
  }
});

Workers("SIGTERM lets a slow request in flight finish on its worker, stops every worker and exits 0", async () => {
  const slow = await startUpstream(tagged("slow", 800));
  const c = await startCluster(routeTo(slow.url));
  try {
    const pids = (await status(c.admin)).workers.map((w) => w.pid!);
    const pending = get(`${c.url}/x`);
    await sleep(200);
    c.weir.child.kill("SIGTERM");
    const answer = await pending;
    assert.is(answer.status, 200);
    assert.is(answer.body, "slow");
    const { code } = await c.weir.exited;
    assert.is(code, 0);
    assert.match(c.weir.output(), /weir: stopped\n/);
    for (const pid of pids) assert.throws(() => process.kill(pid, 0), "worker gone");
  } finally {
    await slow.close();
  }
});

Workers.run();
