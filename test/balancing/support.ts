/**
 * Helpers for the balancing suites: traffic through a running Weir, the admin view of an
 * upstream, a Weir whose log lines a test can read, and waiting for a condition with a deadline.
 */
import { Writable } from "node:stream";
import { request } from "undici";
import { pino } from "pino";
import { WeirRuntime } from "../../core/server/runtime.js";
import type { WeirConfig } from "../../core/config/schema.js";
import { tempDir, withTestDefaults, writeConfig, type TestWeir } from "../support/weir.js";

export interface Answer { status: number; body: string; ms: number }

/** Sends `n` GETs (or `method`) to `url`, `concurrency` at a time; answers in completion order. */
export async function load(url: string, n: number, options: { concurrency?: number; method?: string; headers?: (i: number) => Record<string, string>; body?: string } = {}): Promise<Answer[]> {
  const out: Answer[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      const started = performance.now();
      const res = await request(url, { method: (options.method ?? "GET") as "GET", headers: options.headers?.(i), body: options.body });
      out.push({ status: res.statusCode, body: await res.body.text(), ms: performance.now() - started });
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 1 }, worker));
  return out;
}

export interface TargetView { url: string; healthy: boolean; ejected: boolean; inflight: number; weight: number }

/** `GET /upstreams` of the admin API, for one upstream. */
export async function targetsOf(admin: string, upstream: string): Promise<TargetView[]> {
  const res = await request(`${admin}/upstreams`);
  const body = (await res.body.json()) as Record<string, { targets: TargetView[] }>;
  return body[upstream]!.targets;
}

/** Polls `check` every 5 ms until it is true; returns the time it took, or throws after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 3000, what = "condition"): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check()) return performance.now() - started;
    if (performance.now() - started > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A Weir whose JSON log lines are kept in `lines`. */
export async function startLoggedWeir(config: WeirConfig): Promise<TestWeir & { lines: Record<string, unknown>[] }> {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split("\n")) if (l) lines.push(JSON.parse(l) as Record<string, unknown>); cb(); } });
  const dir = tempDir();
  const configFile = writeConfig(dir, withTestDefaults(config));
  const rt = await WeirRuntime.start({ configFile, logger: pino({ level: "info" }, sink) });
  const { listen, admin } = rt.addresses();
  const url = listen[0]!;
  return {
    rt, url, port: Number(new URL(url).port), admin: admin ?? "", configFile, dir, lines,
    write: (c) => writeConfig(dir, typeof c === "string" ? c : withTestDefaults(c)),
    stop: (graceMs = 0) => rt.stop(graceMs),
  };
}
