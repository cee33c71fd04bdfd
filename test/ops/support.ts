/** Helpers shared by the operations suites. */
import { join } from "node:path";
import { ROOT } from "../support/fixtures.js";
import { parsePrometheusText, type Exposition } from "./prometheus-text.js";

export const OPS_PROBE = join(ROOT, "test", "ops", "fixtures", "ops-probe.ts");

export async function scrape(admin: string, token?: string): Promise<{ status: number; type: string; text: string; exposition: Exposition }> {
  const res = await fetch(`${admin}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type") ?? "", text, exposition: parsePrometheusText(text) };
}

/** Sends `count` GETs one after another; returns the statuses. */
export async function getMany(url: string, count: number, headers: Record<string, string> = {}): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const res = await fetch(url, { headers });
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
}

/** Collects lines written to it (an access log destination). */
export class LineSink {
  readonly lines: string[] = [];
  write(chunk: string): void {
    for (const l of chunk.split("\n")) if (l !== "") this.lines.push(l);
  }
  json(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = "condition"): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}
