/**
 * Two tiny backends for the quickstart: each answers JSON saying who it is and what it received,
 * so the curl in the README shows balancing, header hygiene and prefix stripping at a glance.
 */
import { createServer, type Server } from "node:http";
import { once } from "node:events";

/** Starts one backend per port; when one cannot listen, closes those that did and throws its error (with `port`). */
export async function startDemoBackends(ports: number[] = [9001, 9002], host = "127.0.0.1"): Promise<Server[]> {
  const started = await Promise.allSettled(ports.map(async (port, i) => {
    const name = `backend-${i + 1}`;
    const server = createServer((req, res) => {
      if (req.url === "/health") { res.writeHead(200, { "content-type": "text/plain" }); res.end("ok"); return; }
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = JSON.stringify({ backend: name, method: req.method, url: req.url, headers: req.headers, bodyBytes: Buffer.concat(chunks).length }, null, 2) + "\n";
        res.writeHead(200, { "content-type": "application/json", "x-backend": name });
        res.end(body);
      });
    });
    server.listen(port, host);
    try {
      await once(server, "listening");
    } catch (err) {
      // Say which port it was (the caller names the variable that moves it).
      throw Object.assign(err as Error, { port });
    }
    return server;
  }));
  const failed = started.find((r) => r.status === "rejected");
  if (failed) {
    for (const r of started) if (r.status === "fulfilled") r.value.close();
    throw failed.reason;
  }
  return started.map((r) => (r as PromiseFulfilledResult<Server>).value);
}
