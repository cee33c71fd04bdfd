/** One GET through a proxy before loading it, so that a misconfigured proxy fails loudly instead of measuring 502s. */
import { get } from "node:http";

export function probe(url: string, timeoutMs = 5_000, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(url, { agent: false, timeout: timeoutMs, headers }, (res) => {
      let body = "";
      res.setEncoding("latin1");
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on("error", reject);
  });
}

export async function expectHello(name: string, url: string, headers: Record<string, string> = {}): Promise<void> {
  const r = await probe(url, 5_000, headers);
  if (r.status !== 200 || r.body !== "hello") throw new Error(`${name}: GET ${url} answered ${r.status} ${JSON.stringify(r.body.slice(0, 200))}, expected 200 "hello"`);
}
