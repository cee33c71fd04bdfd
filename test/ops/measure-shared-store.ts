/**
 * What the workers' shared store costs a rate-limited request: the real `weir start`, one
 * keep-alive connection, sequential requests, for a single process (rate limit answered
 * synchronously in-process), `workers: 2` (one IPC round trip to the primary per request) and,
 * when a Redis answers on 127.0.0.1:6379, `workers: 2` with `store.redis`; with and without the
 * rate-limit entry, so the store's share is told apart from the rest. Not a test: run it by hand
 * after a build,
 *   node --no-node-snapshot dist/test/ops/measure-shared-store.js [requests=3000] [rounds=3]
 * and it prints p50 and p99 in µs per variant, medians over interleaved rounds.
 */
import { writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { stringify } from "yaml";
import { Pool } from "undici";
import { runWeir } from "../support/cli.js";
import { startUpstream } from "../support/upstream.js";
import { tempDir } from "../support/weir.js";

const requests = Number(process.argv[2] ?? 3000);
const rounds = Number(process.argv[3] ?? 3);
const WARMUP = 500;

const up = await startUpstream((_req, res) => { res.writeHead(200, { "content-length": 2 }); res.end("ok"); });
const redis = await new Promise<boolean>((resolve) => {
  const s = createConnection(6379, "127.0.0.1", () => { s.end(); resolve(true); });
  s.on("error", () => resolve(false));
});

interface Variant { name: string; workers: number; limited: boolean; redis?: boolean }
const variants: Variant[] = [
  { name: "1 process, no plugin", workers: 1, limited: false },
  { name: "1 process, rate-limit (in-process)", workers: 1, limited: true },
  { name: "workers: 2, no plugin", workers: 2, limited: false },
  { name: "workers: 2, rate-limit (primary's store)", workers: 2, limited: true },
  ...(redis ? [{ name: "workers: 2, rate-limit (store.redis)", workers: 2, limited: true, redis: true }] : []),
];

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(v: Variant): Promise<{ p50: number; p99: number; statuses: Set<number> }> {
  const file = join(tempDir("weir-measure-store-"), "weir.yaml");
  const plugins = v.limited ? [{ use: "rate-limit", config: { limit: 1_000_000_000, window: "1h", by: "route" } }] : [];
  writeFileSync(file, stringify({
    listen: { port: 0, host: "127.0.0.1" }, admin: false, log: { access: false, level: "warn" },
    ...(v.workers > 1 ? { workers: v.workers } : {}),
    ...(v.redis ? { store: { redis: "redis://127.0.0.1:6379" } } : {}),
    routes: [{ name: "r", match: { path: "/" }, upstream: up.url, plugins }],
  }));
  const weir = runWeir(["start", "-c", file]);
  try {
    const url = (await weir.waitFor(/weir: listening on (http:\/\/127\.0\.0\.1:\d+)/, 30_000))[1]!;
    const pool = new Pool(url, { connections: 1, pipelining: 1 });
    const times: number[] = [];
    const statuses = new Set<number>();
    for (let i = 0; i < WARMUP + requests; i++) {
      const t0 = performance.now();
      const res = await pool.request({ path: "/x", method: "GET" });
      await res.body.dump();
      if (i >= WARMUP) { times.push((performance.now() - t0) * 1000); statuses.add(res.statusCode); }
    }
    await pool.close();
    times.sort((a, b) => a - b);
    return { p50: pct(times, 0.5), p99: pct(times, 0.99), statuses };
  } finally {
    weir.child.kill("SIGTERM");
    await weir.exited;
  }
}

const results = new Map<string, { p50: number[]; p99: number[] }>();
for (let r = 0; r < rounds; r++) {
  for (const v of variants) {
    const m = await measure(v);
    if (m.statuses.size !== 1 || !m.statuses.has(200)) throw new Error(`${v.name}: statuses ${[...m.statuses]}`);
    const e = results.get(v.name) ?? { p50: [], p99: [] };
    e.p50.push(m.p50); e.p99.push(m.p99);
    results.set(v.name, e);
  }
}
console.log(`${requests} sequential requests on one keep-alive connection, ${rounds} interleaved rounds (medians), µs:`);
for (const [name, e] of results) console.log(`${name.padEnd(44)} p50 ${median(e.p50).toFixed(0).padStart(5)}  p99 ${median(e.p99).toFixed(0).padStart(5)}   (p50s ${e.p50.map((x) => x.toFixed(0)).join(", ")}; p99s ${e.p99.map((x) => x.toFixed(0)).join(", ")})`);
await up.close();
process.exit(0);
