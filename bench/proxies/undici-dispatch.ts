/**
 * A floor, not a product: the barest Node proxy we know how to write (node:http server, undici
 * Pool `dispatch`, no routing, no header hygiene). Weir minus this is what Weir's own work costs.
 *   node dist/bench/proxies/undici-dispatch.js UPSTREAM_URL
 */
import { createServer } from "node:http";
import { Pool } from "undici";

const upstream = process.argv[2];
if (!upstream) {
  process.stderr.write("usage: undici-dispatch.js UPSTREAM_URL\n");
  process.exit(2);
}
const pool = new Pool(upstream, { pipelining: 1, keepAliveTimeout: 4_000 });
const server = createServer((req, res) => {
  const headers: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() !== "connection") headers.push(raw[i]!, raw[i + 1]!);
  pool.dispatch({ path: req.url!, method: req.method!, headers, body: req.method === "GET" || req.method === "HEAD" ? null : req }, {
    onConnect() {},
    onHeaders(status: number, rawHeaders: Buffer[]) {
      const out: string[] = [];
      for (let i = 0; i < rawHeaders.length; i += 2) {
        const name = rawHeaders[i]!.toString("latin1");
        const lower = name.toLowerCase();
        if (lower !== "connection" && lower !== "keep-alive" && lower !== "transfer-encoding") out.push(name, rawHeaders[i + 1]!.toString("latin1"));
      }
      res.writeHead(status, out);
      return true;
    },
    onData(chunk: Buffer) { res.write(chunk); return true; },
    onComplete() { res.end(); },
    onError(err: Error) {
      if (res.headersSent) res.destroy(err);
      else { res.statusCode = 502; res.end(); }
    },
  } as never);
});
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});
process.once("SIGTERM", () => { server.close(); void pool.close().then(() => process.exit(0)); });
