/**
 * `weir start` is always supervised, with the default worker count too: the primary holds the
 * listening socket, a standby worker takes the place of one that dies, and no connection is
 * refused meanwhile. Real processes through the real `weir` command; the workers are killed with
 * SIGABRT from outside (what V8 does to a process it cannot go on in).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { stringify } from "yaml";
import { killGroup, runWeir, type CliProcess } from "../support/cli.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { tempDir } from "../support/weir.js";
import type { WeirConfig } from "../../core/config/schema.js";
import { clientLoop } from "./client-loop.js";
import { scrape, sleep, until } from "./support.js";

export interface Supervised { weir: CliProcess; url: string; port: number; admin: string; file: string; dir: string }

/** `weir start` on a config (listen and admin on port 0 added), under `ulimit -c 0`. */
export async function startSupervised(config: WeirConfig, env: Record<string, string> = {}): Promise<Supervised> {
  const dir = tempDir("weir-supervise-");
  const file = join(dir, "weir.yaml");
  writeFileSync(file, stringify({ listen: { port: 0, host: "127.0.0.1" }, admin: { port: 0, host: "127.0.0.1" }, shutdownTimeout: "2s", ...config }));
  const weir = runWeir(["start", "-c", file], { noCoreDumps: true, env });
  const url = (await weir.waitFor(/weir: listening on (http:\/\/127\.0\.0\.1:\d+)/, 30_000))[1]!;
  const admin = (await weir.waitFor(/weir: admin API on (http:\/\/127\.0\.0\.1:\d+)\n/))[1]!;
  return { weir, url, port: Number(new URL(url).port), admin, file, dir };
}

export interface WorkerStatus { workers: { index: number; pid: number | null; ready: boolean; restarts: number }[]; standby: { pid: number | null; ready: boolean } | null }

export async function workerStatus(admin: string): Promise<WorkerStatus> {
  const res = await fetch(`${admin}/status`, { signal: AbortSignal.timeout(8000) });
  if (res.status !== 200) return { workers: [], standby: null };
  const body = (await res.json()) as Partial<WorkerStatus>;
  return { workers: body.workers ?? [], standby: body.standby ?? null };
}

/** Every serving worker and the standby are up. */
export async function allReady(admin: string, standby = true): Promise<WorkerStatus> {
  let s: WorkerStatus = { workers: [], standby: null };
  await until(async () => {
    s = await workerStatus(admin);
    return s.workers.length > 0 && s.workers.every((w) => w.ready && w.pid !== null) && (!standby || s.standby?.ready === true);
  }, 30_000, "every worker and the standby ready");
  return s;
}

/** How long each replaced worker's slot had no worker (the primary's "worker restarted and ready" lines). */
export function downTimes(weir: CliProcess): number[] {
  return weir.output().split("\n").filter((l) => l.includes('"msg":"worker restarted and ready"')).map((l) => (JSON.parse(l) as { downMs: number }).downMs);
}

export async function stopWeir(weir: CliProcess): Promise<{ code: number | null }> {
  weir.child.kill("SIGTERM");
  const timer = setTimeout(() => killGroup(weir.child), 15_000);
  const exit = await weir.exited;
  clearTimeout(timer);
  return exit;
}

const Supervision = suite<{ up: TestUpstream }>("weir start supervises its workers");
Supervision.before(async (ctx) => {
  ctx.up = await startUpstream((_req, res) => { res.writeHead(200, { "content-type": "text/plain" }); res.end("up"); });
});
Supervision.after(async (ctx) => { await ctx.up.close(); });

const routeTo = (target: string): WeirConfig => ({ routes: [{ name: "all", match: { path: "/" }, upstream: target }] });

Supervision("with the default worker count, a worker killed with SIGABRT is replaced by the standby within 500 ms and no connection is refused", async ({ up }) => {
  const c = await startSupervised(routeTo(up.url));
  const loop = clientLoop(c.port, "/normal", { concurrency: 2 });
  try {
    const first = await allReady(c.admin);
    assert.is(first.workers.length, 1, "one worker by default");
    const killed: number[] = [];
    for (let round = 0; round < 3; round++) {
      const before = await allReady(c.admin);
      const victim = before.workers[0]!.pid!;
      killed.push(victim);
      process.kill(victim, "SIGABRT");
      await until(async () => { const s = await workerStatus(c.admin); return s.workers[0]?.ready === true && s.workers[0].pid !== victim; }, 10_000, "the standby serving");
      await sleep(200);
    }
    const attempts = await loop.stop();
    assert.is(loop.count("refused"), 0, `refused ${loop.count("refused")} of ${attempts.length} connections`);
    // Only connections in flight on a worker as it died can be cut: at most the two loops' per death.
    assert.ok(loop.count("cut") <= 2 * killed.length, `${loop.count("cut")} connections cut`);
    assert.ok(loop.count("answered") > 20, "requests flowed throughout");
    const down = downTimes(c.weir);
    assert.is(down.length, 3, c.weir.output());
    // A liveness bound, not a performance figure: the standby takes over in a few milliseconds.
    for (const ms of down) assert.ok(ms < 500, `a slot had no worker for ${ms} ms`);
    const { exposition: m } = await scrape(c.admin);
    assert.is(m.value("weir_worker_restarts_total"), 3);
    assert.is(m.value("weir_workers", { state: "configured" }), 1);
    assert.match(c.weir.output(), /"signal":"SIGABRT"[^\n]*"msg":"worker died; restarting it"/);
  } finally {
    await loop.stop();
    const exit = await stopWeir(c.weir);
    assert.is(exit.code, 0, c.weir.output());
  }
});

Supervision("without a standby, a connection made while the worker restarts waits in the primary and is served by the new worker", async ({ up }) => {
  const c = await startSupervised({ ...routeTo(up.url), standbyWorker: false });
  try {
    const before = await allReady(c.admin, false);
    assert.is(before.standby, null);
    process.kill(before.workers[0]!.pid!, "SIGABRT");
    await until(() => /"msg":"worker died; restarting it"/.test(c.weir.output()), 5000, "the death noticed");
    const loop = clientLoop(c.port, "/while-down", { concurrency: 3, maxAttempts: 30 });
    await until(() => downTimes(c.weir).length === 1, 30_000, "the new worker");
    const attempts = await loop.stop();
    assert.is(loop.count("refused"), 0);
    assert.ok(attempts.length > 0 && attempts.every((a) => a.outcome === "answered" && a.status === 200), JSON.stringify(attempts.slice(0, 5)));
    const line = c.weir.output().split("\n").find((l) => l.includes('"msg":"worker restarted and ready"'))!;
    assert.ok((JSON.parse(line) as { heldConnections: number }).heldConnections >= 1, line);
    const { exposition: m } = await scrape(c.admin);
    assert.ok(m.value("weir_connections_held_total") >= 1);
  } finally {
    const exit = await stopWeir(c.weir);
    assert.is(exit.code, 0, c.weir.output());
  }
});

Supervision.run();
