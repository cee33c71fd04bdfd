/**
 * Added cost per request of each built-in, in-process, through weir/sdk/testing in the real
 * sandbox: N requests through the plugin's hooks (onRequest, then onResponse with the vars the
 * request left; onLog for analytics), process CPU time after a warm-up, median of 5 rounds. A no-op plugin
 * with the same hooks gives the harness's own share. Not a test file: run it with
 *   node scripts/build.js && node --no-node-snapshot dist/test/builtins/plugin-cost.js
 * (add `redis` as an argument to measure rate-limit on the Redis at 127.0.0.1:6379 too).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SignJWT } from "jose";
import { loadPlugin, type TestPlugin, type TestRequest } from "../../core/plugin-host/testing.js";
import { builtin } from "./support.js";
import { tempDir } from "../support/weir.js";

const N = Number(process.env.COST_N ?? 3000);
const SECRET = "0123456789abcdef0123456789abcdef-secret";
const token = await new SignJWT({ sub: "alice" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(new TextEncoder().encode(SECRET));
const headers = { host: "api.example.com", accept: "*/*", "user-agent": "curl/8", "x-api-key": "k-alice", authorization: `Bearer ${token}`, origin: "https://app.example.com" };

const dir = tempDir("weir-cost-");
const noop = join(dir, "noop.ts");
writeFileSync(noop, `import { definePlugin } from "weir/sdk";\nexport default definePlugin({ name: "noop", version: "1.0.0", onRequest() {}, onResponse() {} });\n`);
const noop1 = join(dir, "noop1.ts");
writeFileSync(noop1, `import { definePlugin } from "weir/sdk";\nexport default definePlugin({ name: "noop1", version: "1.0.0", onRequest() {} });\n`);

interface Case { name: string; file: string; config: Record<string, unknown>; req?: TestRequest; log?: boolean }
const cases: Case[] = [
  { name: "no-op, 2 hooks (harness)", file: noop, config: {} },
  { name: "no-op, 1 hook (harness)", file: noop1, config: {} },
  { name: "key-auth", file: builtin("key-auth"), config: { keys: { "k-alice": "alice" } } },
  { name: "rate-limit (in-process)", file: builtin("rate-limit"), config: { limit: 1_000_000_000, window: "1s", by: "ip" } },
  { name: "transform", file: builtin("transform"), config: { request: { setHeaders: { "x-consumer": "${consumer}", "x-req": "${requestId}" }, removeHeaders: ["cookie"], rewritePath: "/v2/${params.id}" }, response: { setHeaders: { "x-route": "${route}" }, removeHeaders: ["server"] } }, req: { params: { id: "7" }, consumer: "alice" } },
  { name: "ip-filter", file: builtin("ip-filter"), config: { allow: ["10.0.0.0/8", "192.168.0.0/16", "127.0.0.0/8", "2001:db8::/32"], deny: ["127.0.0.2"] } },
  { name: "cors", file: builtin("cors"), config: { origins: ["https://app.example.com"], credentials: true } },
  { name: "jwt-auth (token seen before)", file: builtin("jwt-auth"), config: { secret: SECRET } },
  { name: "analytics (onLog)", file: builtin("analytics"), config: {}, log: true },
];
if (process.argv.includes("redis")) cases.push({ name: "rate-limit (Redis, async)", file: builtin("rate-limit"), config: { limit: 1_000_000_000, window: "1s", by: "ip" } });

let failures = 0;
/** CPU time of the whole process (every thread, isolates included), in µs: robust to other load on the machine. */
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };

async function once(p: TestPlugin, c: Case): Promise<void> {
  const base: TestRequest = { headers, clientIp: "127.0.0.1", route: "api", requestId: "r-1", ...c.req };
  if (c.log) { await p.log({ ...base, status: 200, responseHeaders: { "content-length": "120" }, timing: { total: 1.2, upstream: 0.8 } }); return; }
  const r = await p.request(base);
  if (r.error || r.responded) { failures++; return; } // e.g. a 50 ms hook timeout on a loaded machine
  await p.response({ ...base, vars: r.vars, consumer: r.consumer, status: 200, responseHeaders: { "content-type": "application/json", server: "x" } });
}

const results: { name: string; us: number }[] = [];
for (const c of cases) {
  let p: TestPlugin;
  if (c.name.includes("Redis")) {
    // loadPlugin uses the in-process store; the Redis path is measured through a RedisStore-backed host call.
    const { RedisStore } = await import("../../core/store/redis-store.js");
    const { createHostCall } = await import("../../core/plugin-host/capabilities.js");
    const store = new RedisStore("redis://127.0.0.1:6379");
    await new Promise((r) => setTimeout(r, 200));
    const call = createHostCall("rate-limit", { store: true }, () => store);
    const t: number[] = [];
    for (let round = 0; round < 5; round++) {
      const t0 = cpu();
      for (let i = 0; i < N; i++) await call("rateLimit.async", JSON.stringify(["cost", 1e9, 1000, "open"]));
      t.push((cpu() - t0) / N);
    }
    await store.close();
    results.push({ name: c.name + " host call + Redis round trip only", us: t.sort((a, b) => a - b)[2]! });
    continue;
  }
  p = await loadPlugin(c.file, { config: c.config });
  try {
    for (let i = 0; i < 500; i++) await once(p, c);
    const rounds: number[] = [];
    for (let round = 0; round < 5; round++) {
      const t0 = cpu();
      for (let i = 0; i < N; i++) await once(p, c);
      rounds.push((cpu() - t0) / N);
    }
    results.push({ name: c.name, us: rounds.sort((a, b) => a - b)[2]! });
  } finally { await p.close(); }
}
const two = results[0]!.us, one = results[1]!.us;
const oneHook = new Set(["key-auth", "ip-filter", "jwt-auth (token seen before)", "analytics (onLog)", "no-op, 1 hook (harness)"]);
console.log(`CPU µs per request, median of 5 rounds of ${N}; "vs no-op" subtracts a no-op plugin with the same number of hooks${failures ? ` (${failures} calls failed)` : ""}`);
for (const r of results) {
  const base = r.name.includes("Redis") ? 0 : oneHook.has(r.name) ? one : two;
  console.log(`${r.name.padEnd(48)} ${r.us.toFixed(1).padStart(7)}  vs no-op ${(r.us - base).toFixed(1).padStart(6)}`);
}

// ---- `e2e`: latency of sequential requests through a running Weir, rate-limit local vs Redis ----
if (process.argv.includes("e2e")) {
  const { startUpstream } = await import("../support/upstream.js");
  const { startWeir } = await import("../support/weir.js");
  const { Agent, request } = await import("undici");
  const upstream = await startUpstream();
  const rl = { use: "rate-limit", config: { limit: 1_000_000_000, window: "1s", by: "ip" } };
  const variants: [string, Record<string, unknown>][] = [
    ["no plugin", { routes: [{ name: "r", match: { path: "/" }, upstream: upstream.url }] }],
    ["rate-limit in-process", { routes: [{ name: "r", match: { path: "/" }, upstream: upstream.url, plugins: [rl] }] }],
    ["rate-limit Redis", { store: { redis: "redis://127.0.0.1:6379" }, routes: [{ name: "r", match: { path: "/" }, upstream: upstream.url, plugins: [rl] }] }],
  ];
  const M = 2000;
  for (const [name, config] of variants) {
    const w = await startWeir(config as never);
    const agent = new Agent({ connections: 1 });
    await new Promise((r) => setTimeout(r, 300));
    const ms: number[] = [];
    for (let i = 0; i < M + 300; i++) {
      const t0 = performance.now();
      const res = await request(w.url + "/x", { dispatcher: agent });
      await res.body.dump();
      if (i >= 300) ms.push(performance.now() - t0);
    }
    ms.sort((a, b) => a - b);
    console.log(`${name.padEnd(24)} p50 ${ms[M / 2]!.toFixed(3)} ms  p99 ${ms[Math.floor(M * 0.99)]!.toFixed(3)} ms`);
    await agent.close();
    await w.stop();
  }
  await upstream.close();
}
