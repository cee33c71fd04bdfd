/**
 * Load from wrk (`wrk --latency`), parsed into requests per second and latency percentiles.
 * The process is killed if it outlives its duration by more than a few seconds.
 */
import { spawn, type ChildProcess } from "node:child_process";

export interface LoadOptions {
  url: string;
  connections: number;
  threads: number;
  seconds: number;
  pin?: string[];
  /** Told about the load process, so that an interrupted benchmark can kill it. */
  track?: (proc: ChildProcess) => void;
  /** Request headers to send (a scenario behind key-auth needs its key). */
  headers?: Record<string, string>;
  /** Send POSTs with this JSON body instead of GETs (BENCH_BODY_BYTES). */
  body?: { text: string; wrkScript: string };
}

export interface LoadResult {
  rps: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  /** Socket errors plus non-2xx/3xx answers. */
  errors: number;
}

export function runWrk(wrk: string, o: LoadOptions): Promise<LoadResult> {
  const headers = Object.entries(o.headers ?? {}).flatMap(([k, v]) => ["-H", `${k}: ${v}`]);
  const script = o.body ? ["-s", o.body.wrkScript] : [];
  const argv = [...(o.pin ?? []), wrk, `-t${o.threads}`, `-c${o.connections}`, `-d${o.seconds}s`, "--latency", "--timeout", "5s", ...script, ...headers, o.url];
  return runParsed(argv, o.seconds, parseWrk, o.track);
}

export function runParsed(argv: string[], seconds: number, parse: (out: string) => LoadResult, track?: (proc: ChildProcess) => void): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    track?.(p);
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), (seconds + 10) * 1000);
    p.once("error", (e) => { clearTimeout(timer); reject(e); });
    p.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${argv.join(" ")} failed (${signal ?? code}):\n${out.trim()}`));
      try { resolve(parse(out)); } catch (e) { reject(new Error(`${(e as Error).message}:\n${out}`)); }
    });
  });
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

function durationMs(text: string): number {
  const m = /^([0-9.]+)(us|ms|s|m)$/.exec(text);
  if (!m) throw new Error(`cannot read wrk duration "${text}"`);
  return Number(m[1]) * UNIT_MS[m[2]!]!;
}

export function parseWrk(out: string): LoadResult {
  const rps = /Requests\/sec:\s+([0-9.]+)/.exec(out);
  const reqs = /([0-9]+) requests in/.exec(out);
  const p50 = /^\s+50%\s+(\S+)/m.exec(out);
  const p99 = /^\s+99%\s+(\S+)/m.exec(out);
  if (!rps || !reqs || !p50 || !p99) throw new Error("cannot read wrk output");
  let errors = 0;
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  if (sock) errors += Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]);
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (non2xx) errors += Number(non2xx[1]);
  return { rps: Number(rps[1]), requests: Number(reqs[1]), p50Ms: durationMs(p50[1]!), p99Ms: durationMs(p99[1]!), errors };
}
