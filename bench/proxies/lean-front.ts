/**
 * An experiment, the one Weir's lean listener (core/server/lean-front.ts) grew out of: what a
 * Node proxy costs without node:http on the client side, with none of Weir's work. The
 * front is a `net` server feeding node's own llhttp binding (`HTTPParser` from `_http_common`,
 * what node:http uses underneath) and writing each response as one buffer; upstream is undici
 * `dispatch` as in Weir. GET only, no hygiene, no keep-alive bookkeeping beyond HTTP/1.1's
 * default: it measures how much of a request's CPU the node:http server side costs, and so how
 * much of Weir's cost on the lean listener is Weir's own work.
 *   node dist/bench/proxies/lean-front.js UPSTREAM_URL
 */
import { createServer } from "node:net";
import { createRequire } from "node:module";
import { Pool } from "undici";

const upstream = process.argv[2];
if (!upstream) {
  process.stderr.write("usage: lean-front.js UPSTREAM_URL\n");
  process.exit(2);
}

interface Parser {
  initialize(type: number, resource: object): void;
  execute(data: Buffer): number | Error;
  free?(): void;
  [k: number]: unknown;
}
const { HTTPParser } = createRequire(import.meta.url)("_http_common") as {
  HTTPParser: { new (): Parser; REQUEST: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number };
};

const pool = new Pool(upstream, { pipelining: 1, keepAliveTimeout: 4_000 });
const upstreamHost = new URL(upstream).host;

const server = createServer((socket) => {
  socket.setNoDelay(true);
  const parser = new HTTPParser();
  parser.initialize(HTTPParser.REQUEST, {});
  parser[HTTPParser.kOnHeadersComplete] = (_major: number, _minor: number, headers: string[], _method: number, url: string) => {
    const out: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      const n = headers[i]!.toLowerCase();
      if (n !== "connection" && n !== "keep-alive" && n !== "host") out.push(headers[i]!, headers[i + 1]!);
    }
    out.push("host", upstreamHost);
    let head = "";
    const chunks: Buffer[] = [];
    pool.dispatch({ path: url, method: "GET", headers: out }, {
      onConnect() {},
      onHeaders(status: number, raw: Buffer[]) {
        head = `HTTP/1.1 ${status} OK\r\n`;
        for (let i = 0; i < raw.length; i += 2) {
          const n = raw[i]!.toString("latin1");
          if (n.toLowerCase() !== "connection") head += `${n}: ${raw[i + 1]!.toString("latin1")}\r\n`;
        }
        head += "\r\n";
        return true;
      },
      onData(c: Buffer) { chunks.push(c); return true; },
      onComplete() { socket.write(Buffer.concat([Buffer.from(head, "latin1"), ...chunks])); },
      onError() { socket.destroy(); },
    });
  };
  parser[HTTPParser.kOnBody] = () => undefined;
  parser[HTTPParser.kOnMessageComplete] = () => undefined;
  socket.on("data", (d: Buffer) => { parser.execute(d); });
  socket.on("error", () => socket.destroy());
  socket.on("close", () => parser.free?.());
});
server.listen(0, "127.0.0.1", () => {
  const a = server.address() as { port: number };
  process.stdout.write(`listening on http://127.0.0.1:${a.port}\n`);
});
