/**
 * Two tiny backends for the quickstart: each answers JSON saying who it is and what it received,
 * so the curl in the README shows balancing, header hygiene and prefix stripping at a glance.
 */
import { createServer, type Server } from "node:http";
import { once } from "node:events";

export async function startDemoBackends(ports: number[] = [9001, 9002], host = "127.0.0.1"): Promise<Server[]> {
  return Promise.all(ports.map(async (port, i) => {
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
    await once(server, "listening");
    return server;
  }));
}
