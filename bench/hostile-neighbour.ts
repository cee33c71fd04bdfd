/**
 * What a hostile plugin costs a route that does not use it, for `npm run bench`: one Weir (its
 * CLI, one worker) with a route `/good` (no plugins) and a route `/bad` whose plugin burns its
 * whole time limit on every other call (so it never fails five times in a row and is never
 * skipped as degraded: the worst case). wrk loads `/good` alone, then again while a client keeps
 * 30 requests to `/bad` in flight the whole time; the report gives `/good`'s p99 in both, and
 * what `/bad` answered.
 *
 * Standalone: node scripts/build.js && node --no-node-snapshot dist/bench/hostile-neighbour.js
 * Environment: BENCH_SECONDS (5), BENCH_CONNECTIONS (50) for wrk on /good.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Pool } from "undici";
import { stringify } from "yaml";
import { ChildSet } from "./lib/children.js";
import { helloConfig, startNginx } from "./lib/nginx.js";
import { freePort } from "./lib/ports.js";
import { findTools } from "./lib/tools.js";
import { runWrk, type LoadResult } from "./lib/wrk.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

const HOSTILE = `import { definePlugin } from "weir/sdk";
let n = 0;
export default definePlugin({
  name: "hostile-neighbour", version: "1.0.0",
  onRequest(ctx) {
    if (n++ % 2 === 0) for (;;) { /* burn the whole time limit */ }
    ctx.request.headers.set("x-survived", "1");
  },
});
`;

export interface HostileNeighbourResult {
  alone: LoadResult;
  attacked: LoadResult;
  bad: { answered: number; byStatus: Record<string, number> };
  inFlight: number;
}

export async function measureHostileNeighbour(o: { seconds: number; connections: number; say: (line: string) => void }): Promise<HostileNeighbourResult | string> {
  const tools = findTools(root, []);
  if (!tools.wrk) return "wrk is not installed";
  const children = new ChildSet();
  const dir = mkdtempSync(join(tmpdir(), "weir-hostile-bench-"));
  const pinLoad = tools.taskset ? [tools.taskset, "-c", "0"] : [];
  const pinProxy = tools.taskset ? [tools.taskset, "-c", "1"] : [];
  try {
    let upstream: string;
    if (tools.nginx) {
      const port = await freePort();
      await startNginx(children, "upstream", tools.nginx, dir, port, helloConfig(dir, port), pinLoad);
      upstream = `http://127.0.0.1:${port}`;
    } else {
      const child = children.start("upstream", process.execPath, [join(root, "dist", "bench", "upstream", "node-hello.js")], { pin: pinLoad });
      upstream = (await child.waitFor(/listening on (\S+)/))[1]!;
    }
    writeFileSync(join(dir, "hostile.ts"), HOSTILE);
    writeFileSync(join(dir, "weir.yaml"), stringify({
      listen: { port: 0, host: "127.0.0.1" }, admin: false, log: { level: "error", access: false },
      routes: [
        { name: "bad", match: { path: "/bad" }, upstream, plugins: [{ use: "./hostile.ts", limits: { timeoutMs: 50 } }] },
        { name: "good", match: { path: "/good" }, upstream },
      ],
    }));
    const weir = children.start("weir", process.execPath, ["--no-node-snapshot", join(root, "bin", "weir.js"), "start", "-c", join(dir, "weir.yaml")], {
      pin: pinProxy, cwd: dir, env: { ...process.env, WEIR_LOG_LEVEL: "error" },
    });
    const url = (await weir.waitFor(/weir: listening on (\S+)/))[1]!;
    const wrk = () => runWrk(tools.wrk!, { url: url + "/good", connections: o.connections, threads: 1, seconds: o.seconds, pin: pinLoad, track: (c) => children.adopt(c) });

    await wrk(); // warm-up
    const alone = await wrk();

    // 30 requests to /bad in flight for as long as wrk runs (bounded: it stops with wrk).
    const inFlight = 30;
    const pool = new Pool(url, { connections: inFlight });
    let stop = false;
    const byStatus: Record<string, number> = {};
    let answered = 0;
    const hammer = async () => {
      while (!stop) {
        try {
          const res = await pool.request({ path: "/bad/x", method: "GET" });
          await res.body.dump();
          byStatus[res.statusCode] = (byStatus[res.statusCode] ?? 0) + 1;
        } catch {
          byStatus.error = (byStatus.error ?? 0) + 1;
        }
        answered++;
      }
    };
    const hammers = Array.from({ length: inFlight }, hammer);
    await new Promise((r) => setTimeout(r, 500));
    const attacked = await wrk();
    stop = true;
    await Promise.all(hammers);
    await pool.close();
    return { alone, attacked, bad: { answered, byStatus }, inFlight };
  } finally {
    await children.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function hostileNeighbourReport(r: HostileNeighbourResult): string {
  const row = (name: string, l: LoadResult) => `| ${name.padEnd(40)} | ${Math.round(l.rps).toLocaleString("en-US").padStart(7)} | ${l.p50Ms.toFixed(2).padStart(6)} ms | ${l.p99Ms.toFixed(2).padStart(7)} ms |`;
  return [
    "| /good (no plugins)                       |   req/s |       p50 |        p99 |",
    "|------------------------------------------|--------:|----------:|-----------:|",
    row("alone", r.alone),
    row(`with ${r.inFlight} requests to /bad in flight`, r.attacked),
    "",
    `/bad answered ${r.bad.answered} requests meanwhile: ${Object.entries(r.bad.byStatus).map(([s, n]) => `${n} x ${s}`).join(", ")}`,
    `target: /good p99 under 50 ms with the hostile plugin hammered: ${r.attacked.p99Ms < 50 ? "PASS" : "FAIL"} (${r.attacked.p99Ms.toFixed(2)} ms; alone ${r.alone.p99Ms.toFixed(2)} ms)`,
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const seconds = Number(process.env.BENCH_SECONDS ?? 5), connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
  const r = await measureHostileNeighbour({ seconds, connections, say: (l) => process.stdout.write(l + "\n") });
  process.stdout.write((typeof r === "string" ? `hostile-neighbour: skipped, ${r}` : hostileNeighbourReport(r)) + "\n");
}
