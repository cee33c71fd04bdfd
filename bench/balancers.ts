/**
 * Balancer pick-cost micro-benchmark: ns per `pick` for each algorithm over 100 targets, warm,
 * median of 7 rounds. The targets: <= 1 us for round-robin, least-conn and p2c-ewma,
 * <= 2 us for hash. Also prints the hash ring's remap fraction when one of 10 targets leaves.
 *
 * Runs on its own (`node dist/bench/balancers.js`); `runBalancerBench()` is what `npm run bench`
 * calls. No sockets are opened: Targets connect lazily and are closed at the end.
 */
import { fileURLToPath } from "node:url";
import type { BalanceName } from "../core/config/schema.js";
import type { PickContext } from "../core/upstream/balancers/balancer.js";
import { balancers } from "../core/upstream/balancers/index.js";
import { HashBalancer } from "../core/upstream/balancers/hash.js";
import { Target } from "../core/upstream/target.js";

export interface BalancerBenchResult {
  balance: BalanceName;
  targets: number;
  nsPerPick: number;
  limitNs: number;
  ok: boolean;
}

const LIMIT_NS: Record<BalanceName, number> = { "round-robin": 1000, "least-conn": 1000, "p2c-ewma": 1000, hash: 2000, random: 1000 };

function makeTargets(n: number): Target[] {
  return Array.from({ length: n }, (_, i) => {
    const t = new Target("bench", `http://10.0.${i >> 8}.${i & 255}:8080`, { connectTimeoutMs: 1000, idleTimeoutMs: 1000, maxConnections: null });
    t.weight = 1 + (i % 3);
    t.inflight = i % 5;
    t.latency.observe(1 + (i % 7), Date.now());
    return t;
  });
}

/** Runs the benchmark, prints a table and returns the figures. */
export async function runBalancerBench(options: { targets?: number; picks?: number; rounds?: number; print?: boolean } = {}): Promise<BalancerBenchResult[]> {
  const n = options.targets ?? 100;
  const picks = options.picks ?? 200_000;
  const rounds = options.rounds ?? 7;
  const ts = makeTargets(n);
  // A few targets down, as in real life: the unavailable paths are part of the cost.
  ts[3]!.healthy = false;
  ts[40]!.ejectedUntil = Date.now() + 3_600_000;
  const keys = Array.from({ length: 1024 }, (_, i) => `user-${i * 7919}`);
  const contexts: PickContext[] = keys.map((k) => ({ path: "/api/items", clientIp: "10.1.2.3", header: (name: string) => (name === "x-user" ? k : undefined) }));
  const results: BalancerBenchResult[] = [];
  let sink = 0;
  for (const balance of Object.keys(balancers) as BalanceName[]) {
    const b = balancers[balance]!(ts, { hashOn: "header:x-user" });
    for (let i = 0; i < picks; i++) if (b.pick(contexts[i & 1023]!)) sink++; // warm-up
    const samples: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const started = process.hrtime.bigint();
      for (let i = 0; i < picks; i++) if (b.pick(contexts[i & 1023]!)) sink++;
      samples.push(Number(process.hrtime.bigint() - started) / picks);
    }
    samples.sort((a, c) => a - c);
    const ns = samples[rounds >> 1]!;
    results.push({ balance, targets: n, nsPerPick: Math.round(ns), limitNs: LIMIT_NS[balance], ok: ns <= LIMIT_NS[balance] });
  }
  const remap = remapFraction();
  await Promise.all(ts.map((t) => t.pool.close()));
  if (options.print !== false) {
    console.log(`balancer pick cost, ${n} targets, median of ${rounds} rounds of ${picks} picks`);
    for (const r of results) console.log(`  ${r.balance.padEnd(12)} ${String(r.nsPerPick).padStart(6)} ns/pick  (limit ${r.limitNs} ns) ${r.ok ? "ok" : "OVER"}`);
    console.log(`  hash remap when 1 of 10 targets leaves: ${(remap * 100).toFixed(1)}% of keys (ideal 10%)`);
  }
  if (sink < 0) console.log(sink); // keeps the picks from being optimised away
  return results;
}

/** Fraction of 20,000 keys whose target changes when the last of 10 targets is removed. */
function remapFraction(): number {
  const ts = makeTargets(10).map((t) => { t.weight = 1; return t; });
  const before = new HashBalancer(ts, "path");
  const after = new HashBalancer(ts.slice(0, 9), "path");
  let moved = 0;
  const n = 20_000;
  for (let i = 0; i < n; i++) {
    const ctx: PickContext = { path: `/k/${i}`, clientIp: "", header: () => undefined };
    if (before.pick(ctx) !== after.pick(ctx)) moved++;
  }
  void Promise.all(ts.map((t) => t.pool.close()));
  return moved / n;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const results = await runBalancerBench();
  process.exitCode = results.every((r) => r.ok) ? 0 : 1;
}
