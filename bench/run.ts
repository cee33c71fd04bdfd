/**
 * `npm run bench`: Weir against nginx and @fastify/http-proxy, each its own process in front of
 * ONE shared upstream (nginx answering 200 "hello"), loaded by wrk in interleaved rounds.
 * Prints medians, ratios and Weir's throughput targets (bench/targets.ts). It is a report: the exit code is 0 whether the
 * targets pass or not, and non-zero only when the benchmark itself could not run.
 *
 * Environment: BENCH_SECONDS (5) per run, BENCH_ROUNDS (3), BENCH_ONLY=name,name,
 * BENCH_CONNECTIONS (50), BENCH_WARMUP seconds per proxy (1), BENCH_JSON=FILE (write the results),
 * BENCH_KEEP=1 (keep the temp dir with the generated configs), BENCH_BODY_BYTES=N (POST a JSON
 * body of about N bytes instead of GET, e.g. 100 for an API call), BENCH_WITHOUT=nginx,wrk (pretend
 * they are missing), BENCH_PLUGIN_COSTS=0 / BENCH_REDIS=0 / BENCH_HOSTILE=0 (skip the sections after
 * the proxy table). See docs/benchmarks.md.
 */
import { cpus } from "node:os";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ChildSet } from "./lib/children.js";
import { treeCpuMicros } from "./lib/cpu-time.js";
import { helloConfig, startNginx } from "./lib/nginx.js";
import { freePort } from "./lib/ports.js";
import { expectHello } from "./lib/probe.js";
import { pairedRatio, summarize, table, ratio, type Sample, type Summary } from "./lib/report.js";
import { findTools, INSTALL_HINT } from "./lib/tools.js";
import { runAutocannon } from "./lib/autocannon.js";
import { runWrk, type LoadOptions, type LoadResult } from "./lib/wrk.js";
import { scenarios, type BenchContext, type RunningProxy, type Scenario } from "./scenarios.js";
import { baselines, targets } from "./targets.js";
import { measurePluginCosts, pluginCostsTable } from "./plugin-costs.js";
import { measureRedisLatency, redisLatencyReport, redisUnavailable } from "./redis-latency.js";
import { hostileNeighbourReport, measureHostileNeighbour } from "./hostile-neighbour.js";

/** Sections after the proxy table, selectable by name in BENCH_ONLY like the scenarios. */
const SECTIONS = ["plugin-costs", "redis-latency", "hostile-neighbour"];

const distBench = fileURLToPath(new URL(".", import.meta.url));
const root = fileURLToPath(new URL("../..", import.meta.url));

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number, got "${raw}"`);
  return n;
}

const say = (line = "") => process.stdout.write(line + "\n");

/** A JSON body of about `bytes` bytes and the wrk script that POSTs it; undefined for GET. */
function bodyLoad(bytes: number, dir: string): LoadOptions["body"] {
  if (bytes <= 0) return undefined;
  const text = JSON.stringify({ order: 7, note: "x".repeat(Math.max(0, Math.round(bytes) - 24)) });
  const wrkScript = join(dir, "post.lua");
  writeFileSync(wrkScript, `wrk.method = "POST"\nwrk.body = ${JSON.stringify(text)}\nwrk.headers["Content-Type"] = "application/json"\n`);
  return { text, wrkScript };
}

async function main(): Promise<number> {
  const seconds = Math.max(1, Math.round(envNumber("BENCH_SECONDS", 5)));
  const rounds = Math.max(1, Math.round(envNumber("BENCH_ROUNDS", 3)));
  const connections = Math.max(1, Math.round(envNumber("BENCH_CONNECTIONS", 50)));
  const warmup = Math.round(envNumber("BENCH_WARMUP", 1));
  const tools = findTools(root, (process.env.BENCH_WITHOUT ?? "").split(",").map((s) => s.trim()).filter(Boolean));

  // Which scenarios.
  const only = (process.env.BENCH_ONLY ?? "").split(",").map((s) => s.trim()).filter((s) => s && !SECTIONS.includes(s));
  const unknown = only.filter((n) => !scenarios.some((s) => s.name === n));
  if (unknown.length) {
    say(`bench: unknown scenario ${unknown.map((u) => `"${u}"`).join(", ")}; known: ${scenarios.map((s) => s.name).concat(SECTIONS).join(", ")}`);
    return 2;
  }
  const selected = only.length ? scenarios.filter((s) => only.includes(s.name)) : scenarios.filter((s) => s.default);

  // Which tools.
  const missing = (["nginx", "wrk"] as const).filter((t) => tools[t] === null);
  if (missing.length) say(`bench: ${missing.join(" and ")} not found; install with: ${INSTALL_HINT}`);
  let load: (o: LoadOptions) => Promise<LoadResult>;
  let loadName: string;
  if (tools.wrk) {
    load = (o) => runWrk(tools.wrk!, o);
    loadName = `wrk -t1 -c${connections} -d${seconds}s --latency`;
  } else if (tools.autocannon) {
    load = (o) => runAutocannon(tools.autocannon!, o);
    loadName = `autocannon -c${connections} -d${seconds} (wrk missing)`;
  } else {
    say("bench: no load generator (wrk, or an installed autocannon): nothing can be measured.");
    return 1;
  }
  // wrk on core 0 with the upstream, the proxy alone on core 1: the proxy is what we measure.
  const twoCores = tools.taskset !== null && cpus().length >= 2;
  const pinLoad = twoCores ? [tools.taskset!, "-c", "0"] : [];
  const pinProxy = twoCores ? [tools.taskset!, "-c", "1"] : [];

  const children = new ChildSet();
  const tmp = mkdtempSync(join(tmpdir(), "weir-bench-"));
  const dir = (name: string) => { const d = join(tmp, name); mkdirSync(d, { recursive: true }); return d; };
  const removeTmp = () => { if (!process.env.BENCH_KEEP) rmSync(tmp, { recursive: true, force: true }); };
  children.onInterrupt(removeTmp);
  try {
    // The shared upstream.
    let upstreamUrl: string;
    let upstreamName: string;
    if (tools.nginx) {
      const d = dir("upstream");
      const port = await freePort();
      await startNginx(children, "upstream", tools.nginx, d, port, helloConfig(d, port), pinLoad);
      upstreamUrl = `http://127.0.0.1:${port}`;
      upstreamName = "nginx (one worker) returning 200 \"hello\"";
    } else {
      const child = children.start("upstream", process.execPath, [join(distBench, "upstream", "node-hello.js")], { pin: pinLoad });
      upstreamUrl = (await child.waitFor(/listening on (\S+)/))[1]!;
      upstreamName = "node:http returning 200 \"hello\" (nginx is missing: the upstream may be the bottleneck)";
    }
    await expectHello("upstream", upstreamUrl);

    say(`bench: ${new Date().toISOString()}, node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model.trim() ?? "?"})`);
    say(`bench: upstream ${upstreamName} at ${upstreamUrl}`);
    say(`bench: load ${loadName}, ${rounds} interleaved round(s), warm-up ${warmup}s per proxy`);
    say(twoCores ? "bench: load and upstream pinned to CPU 0, each proxy to CPU 1 (taskset)" : "bench: no CPU pinning (needs taskset and 2 CPUs)");

    const ctx: BenchContext = { root, distBench, upstreamUrl, tools, children, pin: pinProxy, dir };
    const running: { s: Scenario; p: RunningProxy; samples: Sample[] }[] = [];
    for (const s of selected) {
      const why = s.unavailable(ctx);
      if (why) { say(`bench: skipping ${s.name}: ${why}`); continue; }
      const p = await s.start(ctx);
      await expectHello(s.name, p.url + "/", p.headers);
      say(`bench: ${s.name} (${s.description}) on ${p.url}, pid ${p.pid}`);
      running.push({ s, p, samples: [] });
    }
    if (running.length === 0) { say("bench: nothing to measure"); return 1; }

    const body = bodyLoad(envNumber("BENCH_BODY_BYTES", 0), dir("load"));
    if (body) say(`bench: every request is a POST with a ${Buffer.byteLength(body.text)}-byte JSON body (BENCH_BODY_BYTES)`);
    const loadOf = (p: RunningProxy, secs: number): LoadOptions => ({ url: p.url + "/", connections, threads: 1, seconds: secs, pin: pinLoad, track: (c) => children.adopt(c), headers: p.headers, body });
    if (warmup > 0) for (const r of running) await load(loadOf(r.p, warmup));

    // Interleaved rounds, rotating the order so that no proxy always runs first (or last).
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < running.length; k++) {
        const r = running[(k + round) % running.length]!;
        const before = treeCpuMicros(r.p.pid);
        const res = await load(loadOf(r.p, seconds));
        const after = treeCpuMicros(r.p.pid);
        const cpuUsPerReq = before !== null && after !== null && res.requests > 0 ? (after - before) / res.requests : null;
        r.samples.push({ ...res, cpuUsPerReq });
        say(`  round ${round + 1}/${rounds}  ${r.s.name.padEnd(16)} ${Math.round(res.rps).toString().padStart(7)} req/s  p50 ${res.p50Ms.toFixed(2)} ms  p99 ${res.p99Ms.toFixed(2)} ms` +
          (cpuUsPerReq !== null ? `  ${cpuUsPerReq.toFixed(0)} µs CPU/req` : "") + (res.errors ? `  ${res.errors} errors` : ""));
      }
    }

    const summaries: Summary[] = running.map((r) => summarize(r.s.name, r.s.label, r.samples));
    say();
    say(`Medians of ${rounds} round(s) of ${seconds}s, ${connections} connections:`);
    say(table(summaries, baselines.map((b) => ({ name: b, label: scenarios.find((s) => s.name === b)?.label ?? b }))));
    say();
    const verdicts = targets.map((t) => {
      const a = summaries.find((s) => s.name === t.scenario);
      const b = summaries.find((s) => s.name === t.baseline);
      const value = a ? ratio(a, b) : null;
      const verdict = value === null ? "SKIP" : value >= t.min ? "PASS" : "FAIL";
      // The same comparison by CPU time per request: less sensitive to what else runs on the
      // machine, shown to help read a close verdict (the target itself is on req/s).
      const cpu = a?.cpuUsPerReq && b?.cpuUsPerReq ? b.cpuUsPerReq / a.cpuUsPerReq : null;
      const paired = a ? pairedRatio(a, b) : null;
      const extra = [paired === null ? "" : `median of per-round ratios ${paired.toFixed(2)}x`, cpu === null ? "" : `by CPU per request ${cpu.toFixed(2)}x`].filter(Boolean);
      say(`target ${t.scenario} >= ${t.min}x ${t.baseline} (req/s): ${verdict}` +
        (value === null ? " (not measured)" : ` (${value.toFixed(2)}x${extra.length ? "; " + extra.join(", ") : ""})`));
      return { ...t, value, pairedRatio: paired, cpuRatio: cpu, verdict };
    });
    if (missing.length) say(`\nbench: measured without ${missing.join(" and ")}; for the full comparison: ${INSTALL_HINT}`);

    if (process.env.BENCH_JSON) {
      writeFileSync(process.env.BENCH_JSON, JSON.stringify({
        date: new Date().toISOString(), node: process.version, cpus: cpus().length, load: loadName, upstream: upstreamName,
        seconds, rounds, connections, pinned: twoCores, results: summaries, targets: verdicts,
      }, null, 2) + "\n");
      say(`bench: results written to ${process.env.BENCH_JSON}`);
    }
    return 0;
  } finally {
    await children.stopAll();
    if (process.env.BENCH_KEEP) say(`bench: kept ${tmp}`);
    removeTmp();
  }
}

/**
 * The built-ins' sections, after the proxy table: each built-in's added CPU per request
 * (bench/plugin-costs.ts) and rate-limit's added p99 with Redis (bench/redis-latency.ts). With
 * BENCH_ONLY set they run only when named there; BENCH_PLUGIN_COSTS=0 / BENCH_REDIS=0 skip them.
 */
async function sections(): Promise<void> {
  const only = (process.env.BENCH_ONLY ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const wanted = (name: string, env: string) => process.env[env] !== "0" && (only.length === 0 || only.includes(name));
  const twoCores = cpus().length >= 2 && findTools(root, (process.env.BENCH_WITHOUT ?? "").split(",").map((s) => s.trim()).filter(Boolean)).taskset;
  if (wanted("plugin-costs", "BENCH_PLUGIN_COSTS")) {
    const n = Math.max(100, Math.round(envNumber("BENCH_PLUGIN_N", 3000))), r = Math.max(1, Math.round(envNumber("BENCH_PLUGIN_ROUNDS", 5)));
    say();
    say(`Built-in plugins: added cost per request (in the real sandbox through weir/sdk/testing, process CPU, median of ${r} rounds of ${n}):`);
    const rows = await measurePluginCosts({ n, rounds: r, say });
    say(pluginCostsTable(rows));
  }
  if (wanted("hostile-neighbour", "BENCH_HOSTILE")) {
    const seconds = Math.max(1, Math.round(envNumber("BENCH_SECONDS", 5))), connections = Math.max(1, Math.round(envNumber("BENCH_CONNECTIONS", 50)));
    say();
    say(`A hostile plugin's neighbour: /good (no plugins) under wrk -c${connections} -d${seconds}s, alone and while 30 requests to a route whose plugin burns its time limit on every other call are in flight (one Weir, CLI):`);
    const r = await measureHostileNeighbour({ seconds, connections, say });
    say(typeof r === "string" ? `hostile-neighbour: skipped, ${r}` : hostileNeighbourReport(r));
  }
  if (wanted("redis-latency", "BENCH_REDIS")) {
    const url = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
    say();
    const why = await redisUnavailable(url);
    if (why) { say(`redis-latency: skipped, Redis does not answer at ${url} (${why}); start one, or set BENCH_REDIS=0`); return; }
    const n = Math.max(100, Math.round(envNumber("BENCH_REDIS_REQUESTS", 2000))), r = Math.max(1, Math.round(envNumber("BENCH_REDIS_ROUNDS", 3)));
    say(`rate-limit with Redis (${url}): sequential requests through two Weirs (CLI), ${r} interleaved round(s) of ${n}${twoCores ? ", Weirs pinned to CPU 1" : ""}:`);
    const res = await measureRedisLatency({ redisUrl: url, requests: n, rounds: r, pin: twoCores ? [twoCores, "-c", "1"] : [], say });
    say(redisLatencyReport(res));
  }
}

async function all(): Promise<number> {
  const only = (process.env.BENCH_ONLY ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  // BENCH_ONLY naming only sections: no proxy table (and no nginx or wrk needed).
  const code = only.length > 0 && only.every((s) => SECTIONS.includes(s)) ? 0 : await main();
  if (code === 2) return code; // an unknown name in BENCH_ONLY
  await sections();
  return code;
}

all().then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`); process.exitCode = 1; },
);
