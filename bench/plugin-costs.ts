/**
 * Each built-in's added cost per request, for `npm run bench`: the plugin's hooks run in
 * the real sandbox through `weir/sdk/testing` (the same compiler, isolate, limits and capabilities
 * Weir uses), N requests per round after a warm-up, and we read the **process CPU time** (every
 * thread, isolates included: robust to other load on the machine), median of the rounds. A no-op
 * plugin with the same hooks gives the share every plugin pays (the crossings and this harness);
 * "added" is the built-in's own work on top of it. Same logic as test/builtins/plugin-cost.ts.
 *
 * Standalone: node scripts/build.js && node --no-node-snapshot dist/bench/plugin-costs.js
 * Environment: BENCH_PLUGIN_N (requests per round, 3000), BENCH_PLUGIN_ROUNDS (5).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { loadPlugin, type TestPlugin, type TestRequest } from "../core/plugin-host/testing.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const builtin = (name: string) => join(root, "plugins", name, "plugin.ts");

export interface PluginCost {
  name: string;
  /** "onRequest", "onRequest+onResponse" or "onLog". */
  hooks: string;
  /** Process CPU µs per request through the harness (median of rounds). */
  cpuUs: number;
  /** cpuUs minus the no-op plugin with the same hooks; null for the no-op rows themselves. */
  addedUs: number | null;
  failures: number;
  note?: string;
}

interface Case { name: string; file: string; config: Record<string, unknown>; hooks: "1" | "2" | "log"; req?: TestRequest; note?: string }

const SECRET = "0123456789abcdef0123456789abcdef-secret";
/** Process CPU time in µs (user + system, every thread). */
const cpu = () => { const u = process.cpuUsage(); return u.user + u.system; };
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };

export async function measurePluginCosts(options: { n?: number; rounds?: number; say?: (line: string) => void } = {}): Promise<PluginCost[]> {
  const n = options.n ?? 3000;
  const rounds = options.rounds ?? 5;
  const { SignJWT } = await import("jose");
  const token = await new SignJWT({ sub: "alice" }).setProtectedHeader({ alg: "HS256" }).setExpirationTime("1h").sign(new TextEncoder().encode(SECRET));
  const headers = { host: "api.example.com", accept: "*/*", "user-agent": "curl/8", "x-api-key": "k-alice", authorization: `Bearer ${token}`, origin: "https://app.example.com" };

  const dir = mkdtempSync(join(tmpdir(), "weir-plugin-costs-"));
  try {
    const noop2 = join(dir, "noop2.ts");
    writeFileSync(noop2, `import { definePlugin } from "weir/sdk";\nexport default definePlugin({ name: "noop2", version: "1.0.0", onRequest() {}, onResponse() {} });\n`);
    const noop1 = join(dir, "noop1.ts");
    writeFileSync(noop1, `import { definePlugin } from "weir/sdk";\nexport default definePlugin({ name: "noop1", version: "1.0.0", onRequest() {} });\n`);
    const noopLog = join(dir, "nooplog.ts");
    writeFileSync(noopLog, `import { definePlugin } from "weir/sdk";\nexport default definePlugin({ name: "nooplog", version: "1.0.0", onLog() {} });\n`);

    const cases: Case[] = [
      { name: "no-op, onRequest", file: noop1, config: {}, hooks: "1" },
      { name: "no-op, onRequest+onResponse", file: noop2, config: {}, hooks: "2" },
      { name: "no-op, onLog", file: noopLog, config: {}, hooks: "log" },
      { name: "key-auth", file: builtin("key-auth"), config: { keys: { "k-alice": "alice" } }, hooks: "1" },
      { name: "jwt-auth", file: builtin("jwt-auth"), config: { secret: SECRET }, hooks: "1", note: "token seen before (a first-seen token adds an async host call)" },
      { name: "rate-limit", file: builtin("rate-limit"), config: { limit: 1_000_000_000, window: "1s", by: "ip" }, hooks: "2", note: "in-process store" },
      { name: "transform", file: builtin("transform"), hooks: "2", req: { params: { id: "7" }, consumer: "alice" }, note: "3 request + 2 response changes",
        config: { request: { setHeaders: { "x-consumer": "${consumer}", "x-req": "${requestId}" }, removeHeaders: ["cookie"], rewritePath: "/v2/${params.id}" }, response: { setHeaders: { "x-route": "${route}" }, removeHeaders: ["server"] } } },
      { name: "cors", file: builtin("cors"), config: { origins: ["https://app.example.com"], credentials: true }, hooks: "2" },
      { name: "ip-filter", file: builtin("ip-filter"), config: { allow: ["10.0.0.0/8", "192.168.0.0/16", "127.0.0.0/8", "2001:db8::/32"], deny: ["127.0.0.2"] }, hooks: "1", note: "5 CIDRs" },
      { name: "analytics", file: builtin("analytics"), config: {}, hooks: "log", note: "off the request path; includes its once-a-second store write" },
    ];

    const results: PluginCost[] = [];
    const baseline: Record<Case["hooks"], number> = { "1": 0, "2": 0, log: 0 };
    for (const c of cases) {
      let failures = 0;
      const base: TestRequest = { headers, clientIp: "127.0.0.1", route: "api", requestId: "r-1", ...c.req };
      // The hooks a plugin really has decide its calls and its no-op baseline (a plugin may move
      // work between hooks, e.g. response headers set from onRequest).
      let kind: Case["hooks"] = c.hooks;
      const once = async (p: TestPlugin): Promise<void> => {
        if (kind === "log") {
          const r = await p.log({ ...base, status: 200, responseHeaders: { "content-length": "120" }, timing: { total: 1.2, upstream: 0.8 } });
          if (r.error) failures++;
          return;
        }
        const r = await p.request(base);
        if (r.error || r.responded) { failures++; return; } // e.g. a hook time limit hit on a loaded machine
        if (kind === "2") await p.response({ ...base, vars: r.vars, consumer: r.consumer, status: 200, responseHeaders: { "content-type": "application/json", server: "x" } });
      };
      const p = await loadPlugin(c.file, { config: c.config });
      const hooks = p.manifest.hooks as string[];
      kind = hooks.includes("onRequest") ? (hooks.includes("onResponse") ? "2" : "1") : "log";
      try {
        for (let i = 0; i < Math.min(500, n); i++) await once(p);
        failures = 0;
        const perRound: number[] = [];
        for (let r = 0; r < rounds; r++) {
          const t0 = cpu();
          for (let i = 0; i < n; i++) await once(p);
          perRound.push((cpu() - t0) / n);
        }
        const us = median(perRound);
        const isNoop = c.name.startsWith("no-op");
        if (isNoop) baseline[kind] = us;
        const row: PluginCost = { name: c.name, hooks: kind === "1" ? "onRequest" : kind === "2" ? "onRequest+onResponse" : "onLog", cpuUs: us, addedUs: isNoop ? null : us - baseline[kind], failures };
        if (c.note) row.note = c.note;
        results.push(row);
        options.say?.(`  plugin-costs ${c.name.padEnd(28)} ${us.toFixed(1).padStart(6)} µs CPU/req`);
      } finally {
        await p.close();
      }
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function pluginCostsTable(rows: PluginCost[]): string {
  const head = ["plugin", "hooks", "CPU µs/req", "added vs no-op", "note"];
  const body = rows.map((r) => [
    r.name, r.hooks, r.cpuUs.toFixed(1), r.addedUs === null ? "-" : `${r.addedUs >= 0 ? "+" : ""}${r.addedUs.toFixed(1)}`,
    [r.note ?? "", r.failures ? `${r.failures} calls failed` : ""].filter(Boolean).join("; "),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => "| " + cells.map((c, i) => (i >= 2 && i <= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join(" | ") + " |";
  return [line(head), "|" + widths.map((w, i) => (i >= 2 && i <= 3 ? "-".repeat(w + 1) + ":" : "-".repeat(w + 2))).join("|") + "|", ...body.map(line)].join("\n");
}

// Run directly: print the table.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const n = Number(process.env.BENCH_PLUGIN_N ?? 3000), rounds = Number(process.env.BENCH_PLUGIN_ROUNDS ?? 5);
  const rows = await measurePluginCosts({ n, rounds, say: (l) => process.stdout.write(l + "\n") });
  process.stdout.write(`\nCPU µs per request, median of ${rounds} rounds of ${n}:\n${pluginCostsTable(rows)}\n`);
}
