/**
 * The target "rate-limit with Redis adds < 1 ms p99 on loopback", for `npm run bench`.
 * Two real Weirs, each started through its CLI as its own process, in front of the same node:http
 * upstream: one with `rate-limit` on the in-process store, one with `store.redis` (the shared
 * 127.0.0.1:6379). Sequential requests (one connection each), in interleaved rounds so both see
 * the same machine; p50/p99 over every measured request. The added p99 is redis p99 - local p99.
 *
 * Standalone: node scripts/build.js && node --no-node-snapshot dist/bench/redis-latency.js
 * Environment: BENCH_REDIS_URL (redis://127.0.0.1:6379), BENCH_REDIS_REQUESTS per round (2000),
 * BENCH_REDIS_ROUNDS (3).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { Agent, request } from "undici";
import { ChildSet } from "./lib/children.js";

const distBench = fileURLToPath(new URL(".", import.meta.url));
const root = fileURLToPath(new URL("../..", import.meta.url));

export const REDIS_P99_TARGET_MS = 1;

export interface LatencyRow { name: string; requests: number; p50Ms: number; p99Ms: number; errors: number }
export interface RedisLatencyResult { rows: LatencyRow[]; addedP99Ms: number; addedP50Ms: number; verdict: "PASS" | "FAIL" }

/** null when Redis answers PING at `url`, else why not. */
export async function redisUnavailable(url: string): Promise<string | null> {
  const { Redis } = await import("ioredis");
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false, connectTimeout: 1000, retryStrategy: () => null });
  client.on("error", () => undefined);
  try {
    await client.connect();
    const pong = await client.ping();
    return pong === "PONG" ? null : `unexpected PING answer ${pong}`;
  } catch (err) {
    return (err as Error).message;
  } finally {
    client.disconnect();
  }
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;

export async function measureRedisLatency(options: { redisUrl?: string; requests?: number; rounds?: number; pin?: string[]; say?: (line: string) => void } = {}): Promise<RedisLatencyResult> {
  const redisUrl = options.redisUrl ?? "redis://127.0.0.1:6379";
  const perRound = options.requests ?? 2000;
  const rounds = options.rounds ?? 3;
  const say = options.say ?? (() => undefined);
  const children = new ChildSet();
  const dir = mkdtempSync(join(tmpdir(), "weir-redis-latency-"));
  try {
    const up = children.start("upstream", process.execPath, [join(distBench, "upstream", "node-hello.js")], { pin: options.pin });
    const upstreamUrl = (await up.waitFor(/listening on (\S+)/))[1]!;
    // A limit no request reaches: every request pays the full check, none is refused.
    const rateLimit = { use: "rate-limit", config: { limit: 1_000_000_000, window: "1s", by: "ip" } };
    const variants = [
      { name: "rate-limit, in-process store", config: {} as Record<string, unknown> },
      { name: "rate-limit, store.redis", config: { store: { redis: redisUrl } } },
    ];
    const running: { name: string; url: string; agent: Agent; ms: number[]; errors: number }[] = [];
    for (const [i, v] of variants.entries()) {
      const file = join(dir, `weir-${i}.yaml`);
      writeFileSync(file, stringify({
        listen: { port: 0, host: "127.0.0.1" }, admin: false, log: { level: "warn", access: false }, ...v.config,
        routes: [{ name: "limited", match: { path: "/" }, upstream: upstreamUrl, plugins: [rateLimit] }],
      }));
      const child = children.start(`weir-${i}`, process.execPath, ["--no-node-snapshot", join(root, "bin", "weir.js"), "start", "-c", file], {
        pin: options.pin, cwd: dir, env: { ...process.env, WEIR_LOG_LEVEL: "warn" },
      });
      const url = (await child.waitFor(/weir: listening on (\S+)/))[1]!;
      running.push({ name: v.name, url, agent: new Agent({ connections: 1 }), ms: [], errors: 0 });
    }
    const one = async (r: (typeof running)[number], record: boolean) => {
      const t0 = performance.now();
      try {
        const res = await request(r.url + "/", { dispatcher: r.agent });
        await res.body.dump();
        if (res.statusCode !== 200) r.errors++;
      } catch { r.errors++; return; }
      if (record) r.ms.push(performance.now() - t0);
    };
    // Warm-up: JIT, connections, the isolate, the Redis connection and script cache.
    for (const r of running) for (let i = 0; i < 300; i++) await one(r, false);
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < running.length; k++) {
        const r = running[(k + round) % running.length]!;
        for (let i = 0; i < perRound; i++) await one(r, true);
        say(`  redis-latency round ${round + 1}/${rounds}  ${r.name}`);
      }
    }
    const rows: LatencyRow[] = running.map((r) => {
      const s = [...r.ms].sort((a, b) => a - b);
      return { name: r.name, requests: s.length, p50Ms: pct(s, 0.5), p99Ms: pct(s, 0.99), errors: r.errors };
    });
    for (const r of running) await r.agent.close();
    const addedP99Ms = rows[1]!.p99Ms - rows[0]!.p99Ms;
    const addedP50Ms = rows[1]!.p50Ms - rows[0]!.p50Ms;
    const failed = rows.some((r) => r.errors > 0);
    return { rows, addedP99Ms, addedP50Ms, verdict: addedP99Ms < REDIS_P99_TARGET_MS && !failed ? "PASS" : "FAIL" };
  } finally {
    await children.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function redisLatencyReport(r: RedisLatencyResult): string {
  const lines = r.rows.map((x) => `| ${x.name.padEnd(28)} | ${String(x.requests).padStart(8)} | ${x.p50Ms.toFixed(3).padStart(8)} ms | ${x.p99Ms.toFixed(3).padStart(8)} ms |${x.errors ? ` ${x.errors} errors` : ""}`);
  return [
    `| ${"Weir, one route".padEnd(28)} | requests |          p50 |          p99 |`,
    `|${"-".repeat(30)}|---------:|-------------:|-------------:|`,
    ...lines,
    "",
    `target rate-limit with Redis adds < ${REDIS_P99_TARGET_MS} ms p99 on loopback: ${r.verdict} (+${r.addedP99Ms.toFixed(3)} ms p99, +${r.addedP50Ms.toFixed(3)} ms p50)`,
  ].join("\n");
}

// Run directly: print the report.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const url = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
  const why = await redisUnavailable(url);
  if (why) process.stdout.write(`redis-latency: skipped, Redis does not answer at ${url} (${why})\n`);
  else {
    const r = await measureRedisLatency({
      redisUrl: url, requests: Number(process.env.BENCH_REDIS_REQUESTS ?? 2000), rounds: Number(process.env.BENCH_REDIS_ROUNDS ?? 3),
      say: (l) => process.stdout.write(l + "\n"),
    });
    process.stdout.write("\n" + redisLatencyReport(r) + "\n");
  }
}
