/**
 * The fallback upstream when nginx is missing: node:http answering 200 "hello". It is slower than
 * nginx, so with it the fastest proxies measure the upstream more than themselves.
 *   node dist/bench/upstream/node-hello.js
 */
import { createServer } from "node:http";

const server = createServer((_req, res) => {
  res.writeHead(200, { "content-type": "text/plain", "content-length": "5" });
  res.end("hello");
});
server.keepAliveTimeout = 65_000;
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});
process.once("SIGTERM", () => { server.close(); process.exit(0); });
