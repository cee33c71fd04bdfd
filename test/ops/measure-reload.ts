/**
 * Measures how long a reload of a 1,000-route config takes (read, validate, compile, swap), as
 * rt.reload() sees it, over repeated reloads. Not a test: run it by hand after a build,
 *   node --no-node-snapshot dist/test/ops/measure-reload.js [routes=1000] [reloads=50] [yaml|json]
 * and it prints the median, p99 and max in ms.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { stringify } from "yaml";
import { WeirRuntime } from "../../core/server/runtime.js";
import { startUpstream } from "../support/upstream.js";
import { tempDir, withTestDefaults } from "../support/weir.js";
import type { WeirConfig } from "../../core/config/schema.js";

const routes = Number(process.argv[2] ?? 1000);
const reloads = Number(process.argv[3] ?? 50);
const format = process.argv[4] === "json" ? "json" : "yaml";

const up = await startUpstream();
const config = (n: number): WeirConfig => ({
  upstreams: { a: { targets: [up.url] }, b: { targets: [up.url, `http://127.0.0.2:${up.port}`] } },
  routes: Array.from({ length: routes }, (_, i) => ({
    name: `r${i}`,
    match: { path: `/svc${i}/v${n % 2}/:id`, methods: ["GET", "POST"], ...(i % 10 === 0 ? { host: `h${i}.example.com` } : {}) },
    upstream: i % 3 === 0 ? "b" : "a",
    stripPrefix: i % 2 === 0,
  })),
});
const file = join(tempDir(), `weir.${format}`);
const write = (c: WeirConfig) => writeFileSync(file, format === "json" ? JSON.stringify(withTestDefaults(c)) : stringify(withTestDefaults(c)));
write(config(0));
const rt = await WeirRuntime.start({ configFile: file, logger: pino({ level: "silent" }), accessLog: { write: () => undefined } });
const times: number[] = [];
for (let i = 1; i <= reloads; i++) {
  write(config(i));
  const t = performance.now();
  await rt.reload();
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
const q = (p: number) => times[Math.min(times.length - 1, Math.ceil(p * times.length) - 1)]!.toFixed(1);
console.log(`${routes} routes (${format}), ${reloads} reloads: median ${q(0.5)} ms, p99 ${q(0.99)} ms, max ${times[times.length - 1]!.toFixed(1)} ms`);
await rt.stop(0);
await up.close();
