/** Load from autocannon, used only when wrk is missing and autocannon is already installed. */
import { runParsed, type LoadOptions, type LoadResult } from "./wrk.js";

export function runAutocannon(autocannon: string, o: LoadOptions): Promise<LoadResult> {
  const post = o.body ? ["-m", "POST", "-b", o.body.text, "-H", "content-type=application/json"] : [];
  const argv = [...(o.pin ?? []), autocannon, "-c", String(o.connections), "-d", String(o.seconds), "--json", ...post, o.url];
  return runParsed(argv, o.seconds, parse, o.track);
}

function parse(out: string): LoadResult {
  const json = out.slice(out.indexOf("{"), out.lastIndexOf("}") + 1);
  const r = JSON.parse(json) as {
    requests: { average: number; total: number };
    latency: { p50: number; p99: number };
    errors: number; timeouts: number; non2xx: number;
  };
  return { rps: r.requests.average, requests: r.requests.total, p50Ms: r.latency.p50, p99Ms: r.latency.p99, errors: r.errors + r.timeouts + r.non2xx };
}
