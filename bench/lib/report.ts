/** Medians over rounds, the results table, the ratios and the target verdicts. */
import type { LoadResult } from "./wrk.js";

export interface Sample extends LoadResult {
  /** CPU µs the proxy (with its children) spent per request, or null without /proc. */
  cpuUsPerReq: number | null;
}

export interface Summary {
  name: string;
  label: string;
  rounds: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerReq: number | null;
  errors: number;
  /** Every round's req/s, in round order. */
  rpsByRound: number[];
}

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function summarize(name: string, label: string, samples: Sample[]): Summary {
  const cpu = samples.map((s) => s.cpuUsPerReq).filter((c): c is number => c !== null);
  return {
    name, label, rounds: samples.length,
    rps: median(samples.map((s) => s.rps)),
    p50Ms: median(samples.map((s) => s.p50Ms)),
    p99Ms: median(samples.map((s) => s.p99Ms)),
    cpuUsPerReq: cpu.length ? median(cpu) : null,
    errors: samples.reduce((n, s) => n + s.errors, 0),
    rpsByRound: samples.map((s) => s.rps),
  };
}

/** req/s of `a` over req/s of `b`, from each run's medians. */
export function ratio(a: Summary, b: Summary | undefined): number | null {
  return b && b.rps > 0 ? a.rps / b.rps : null;
}

/**
 * The median over rounds of each round's own ratio: the two runs of a round are seconds apart,
 * so they share most of whatever else the machine was doing, and the ratio cancels some of it.
 */
export function pairedRatio(a: Summary, b: Summary | undefined): number | null {
  if (!b) return null;
  const n = Math.min(a.rpsByRound.length, b.rpsByRound.length);
  const rs: number[] = [];
  for (let i = 0; i < n; i++) if (b.rpsByRound[i]! > 0) rs.push(a.rpsByRound[i]! / b.rpsByRound[i]!);
  return rs.length ? median(rs) : null;
}

const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1)) + " ms";
const x2 = (r: number | null) => (r === null ? "-" : r.toFixed(2) + "x");

export function table(rows: Summary[], baselines: { name: string; label: string }[]): string {
  const present = baselines.filter((b) => rows.some((r) => r.name === b.name));
  const head = ["proxy", "req/s", "p50", "p99", "CPU µs/req", ...present.map((b) => `x ${b.label}`), "rounds (req/s)"];
  const body = rows.map((r) => [
    r.label,
    Math.round(r.rps).toLocaleString("en-US"),
    ms(r.p50Ms),
    ms(r.p99Ms),
    r.cpuUsPerReq === null ? "-" : r.cpuUsPerReq.toFixed(0),
    ...present.map((b) => x2(ratio(r, rows.find((o) => o.name === b.name)))),
    r.rpsByRound.map((v) => Math.round(v)).join(" / ") + (r.errors ? `  (${r.errors} errors)` : ""),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) => "| " + cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ") + " |";
  return [line(head), "|" + widths.map((w, i) => (i === 0 || i === head.length - 1 ? "-".repeat(w + 1) + "-" : "-".repeat(w + 1) + ":")).join("|") + "|", ...body.map(line)].join("\n");
}
