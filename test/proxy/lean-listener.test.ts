/**
 * The lean listener (core/server/lean-front.ts): the fast path for bodiless HTTP/1.1 requests
 * that arrive whole, and its hand-off of everything else to node:http. The rest of the proxy
 * suites run through it too; these tests pin what is particular to it: which requests it takes,
 * the framing of what it writes, connection reuse, pipelining and hand-off mid-connection.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createHash } from "node:crypto";
import { request } from "undici";
import { openRaw } from "../support/raw-connection.js";
import { leanListenerSupported } from "../../core/server/lean-front.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";

const BIG = Buffer.alloc(4 * 1024 * 1024, "weir-lean-");
const upstreamClosed: string[] = [];

async function upstream(): Promise<TestUpstream> {
  return startUpstream((req, res, body) => {
    const url = req.url!;
    if (url === "/chunked") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.write("first,");
      setTimeout(() => res.end("second"), 20);
    } else if (url === "/big") {
      res.writeHead(200, { "content-type": "application/octet-stream" }); // no length: chunked to the client
      let at = 0;
      const pump = () => {
        while (at < BIG.length) {
          const ok = res.write(BIG.subarray(at, at + 65536));
          at += 65536;
          if (!ok) return void res.once("drain", pump);
        }
        res.end();
      };
      pump();
    } else if (url === "/none") {
      res.writeHead(204, { "x-kind": "none" });
      res.end();
    } else if (url === "/same") {
      res.writeHead(304, { etag: '"v1"' });
      res.end();
    } else if (url.startsWith("/slow")) {
      setTimeout(() => { res.writeHead(200, { "content-length": 4 }); res.end("slow"); }, 150);
    } else if (url === "/hang") {
      res.writeHead(200, { "content-length": 100 });
      res.write("part");
      res.on("close", () => upstreamClosed.push(url));
    } else {
      const text = `${req.method} ${url} ${body.length}`;
      res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(text) });
      res.end(req.method === "HEAD" ? undefined : text);
    }
  });
}

function stats(weir: TestWeir): { served: number; handedOff: number } {
  return weir.rt.leanListenerStats()!;
}

const GET = (path: string, port: number, extra = "") => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${extra}\r\n`;

const Lean = suite<{ up: TestUpstream; weir: TestWeir }>("lean listener");

Lean.before(async (ctx) => {
  ctx.up = await upstream();
  ctx.weir = await startWeir({
    limits: { keepAliveTimeout: "1s", headersTimeout: "1s" },
    routes: [{ name: "all", match: { path: "/" }, upstream: ctx.up.url }],
  });
});
Lean.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

Lean("this node's llhttp binding has the shape the lean listener needs (else listeners fall back to node:http alone)", () => {
  assert.ok(leanListenerSupported());
});

Lean("a simple GET is answered on the fast path, framed as node:http frames it", async ({ weir }) => {
  const before = stats(weir);
  const c = await openRaw(weir.port);
  c.send(GET("/hello", weir.port));
  const r = await c.next();
  c.close();
  assert.is(r.status, 200);
  assert.is(r.body, "GET /hello 0");
  assert.is(r.framing, "length");
  assert.is(r.headers["content-type"], "text/plain");
  assert.is(r.headers["connection"], "keep-alive");
  assert.is(r.headers["keep-alive"], "timeout=1");
  assert.ok(r.headers["date"], "a Date header");
  assert.match(r.headers["x-request-id"] ?? "", /^[0-9a-f-]{36}$/);
  assert.is(stats(weir).served, before.served + 1);
  assert.is(stats(weir).handedOff, before.handedOff);
});

Lean("ten requests in turn on one connection are all answered on the fast path", async ({ weir }) => {
  const before = stats(weir);
  const c = await openRaw(weir.port);
  for (let i = 0; i < 10; i++) {
    c.send(GET(`/n${i}`, weir.port));
    assert.is((await c.next()).body, `GET /n${i} 0`);
  }
  c.close();
  assert.is(stats(weir).served, before.served + 10);
  assert.is(stats(weir).handedOff, before.handedOff);
});

Lean("an upstream answer without Content-Length reaches the client chunked and whole", async ({ weir }) => {
  const c = await openRaw(weir.port);
  c.send(GET("/chunked", weir.port));
  const r = await c.next();
  assert.is(r.framing, "chunked");
  assert.is(r.body, "first,second");
  c.send(GET("/after", weir.port)); // the chunked framing ended cleanly: the connection is reusable
  assert.is((await c.next()).body, "GET /after 0");
  c.close();
});

Lean("a 4 MiB answer streams through intact (checksum) to a client that reads slowly", async ({ weir }) => {
  const c = await openRaw(weir.port);
  c.socket.pause();
  c.send(GET("/big", weir.port));
  setTimeout(() => c.socket.resume(), 300); // Weir must hold back, not buffer or drop
  const r = await c.next({ timeoutMs: 10_000 });
  c.close();
  assert.is(r.framing, "chunked");
  const want = createHash("sha256").update(BIG.toString()).digest("hex");
  assert.is(createHash("sha256").update(r.body).digest("hex"), want);
});

Lean("HEAD keeps the upstream's Content-Length and has no body; 204 and 304 have none either", async ({ weir }) => {
  const c = await openRaw(weir.port);
  c.send(`HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n`);
  const head = await c.next({ bodiless: true });
  assert.is(head.status, 200);
  assert.is(head.headers["content-length"], String("HEAD /h 0".length));
  assert.is(head.headers["transfer-encoding"], undefined);
  c.send(GET("/none", weir.port));
  const none = await c.next();
  assert.is(none.status, 204);
  assert.is(none.headers["x-kind"], "none");
  assert.is(none.headers["transfer-encoding"], undefined);
  c.send(GET("/same", weir.port));
  const same = await c.next();
  assert.is(same.status, 304);
  assert.is(same.headers["etag"], '"v1"');
  // Had any of them carried a body, this answer would not parse.
  c.send(GET("/last", weir.port));
  assert.is((await c.next()).body, "GET /last 0");
  c.close();
});

Lean("Connection: close is answered with Connection: close, then the connection closes", async ({ weir }) => {
  const c = await openRaw(weir.port);
  c.send(GET("/bye", weir.port, "Connection: close\r\n"));
  const r = await c.next();
  assert.is(r.headers["connection"], "close");
  assert.is(r.headers["keep-alive"], undefined);
  assert.ok(await c.closed(2000), "the connection closed");
});

Lean("two requests in one read (pipelined) go to node:http and are answered in order", async ({ weir }) => {
  const before = stats(weir);
  const c = await openRaw(weir.port);
  c.send(GET("/p1", weir.port) + GET("/p2", weir.port));
  assert.is((await c.next()).body, "GET /p1 0");
  assert.is((await c.next()).body, "GET /p2 0");
  c.send(GET("/p3", weir.port));
  assert.is((await c.next()).body, "GET /p3 0");
  c.close();
  assert.is(stats(weir).handedOff, before.handedOff + 1);
});

Lean("a request sent while another is in flight waits its turn and is answered after it", async ({ weir }) => {
  const before = stats(weir);
  const c = await openRaw(weir.port);
  c.send(GET("/slow", weir.port));
  await new Promise((r) => setTimeout(r, 40));
  c.send(GET("/quick", weir.port));
  assert.is((await c.next()).body, "slow");
  assert.is((await c.next()).body, "GET /quick 0");
  c.close();
  assert.is(stats(weir).served, before.served + 2);
  assert.is(stats(weir).handedOff, before.handedOff);
});

Lean("a POST whose body came with its head is answered on the fast path, the body reaching the upstream whole", async ({ up, weir }) => {
  const before = stats(weir);
  const c = await openRaw(weir.port);
  const json = JSON.stringify({ order: 7, items: ["a", "b"], note: "\r\n\r\n inside a body is not a head's end" });
  c.send(`POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);
  assert.is((await c.next()).body, `POST /orders ${Buffer.byteLength(json)}`);
  assert.is(up.seen.at(-1)!.body.toString(), json);
  assert.is(up.seen.at(-1)!.headers["content-length"], String(Buffer.byteLength(json)));
  c.send(GET("/then", weir.port));
  assert.is((await c.next()).body, "GET /then 0");
  c.close();
  assert.is(stats(weir).served, before.served + 2);
  assert.is(stats(weir).handedOff, before.handedOff);
});

Lean("a body sent after its head, on a connection that served fast-path GETs, goes to node:http whole, and the connection goes on", async ({ up, weir }) => {
  const before = stats(weir);
  const c = await openRaw(weir.port);
  c.send(GET("/g1", weir.port));
  assert.is((await c.next()).body, "GET /g1 0");
  c.send(`POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\n`);
  await new Promise((r) => setTimeout(r, 30));
  c.send("hello world");
  assert.is((await c.next()).body, "POST /form 11");
  assert.is(up.seen.at(-1)!.body.toString(), "hello world");
  c.send(GET("/g2", weir.port));
  assert.is((await c.next()).body, "GET /g2 0");
  c.close();
  assert.is(stats(weir).handedOff, before.handedOff + 1);
  assert.is(stats(weir).served, before.served + 1);
});

Lean("a GET followed by the start of a second request in one read is not taken for a GET with a body", async ({ up, weir }) => {
  const c = await openRaw(weir.port);
  c.send(GET("/first", weir.port) + "GET /sec");
  await new Promise((r) => setTimeout(r, 30));
  c.send(`ond HTTP/1.1\r\nHost: x\r\n\r\n`);
  assert.is((await c.next()).body, "GET /first 0");
  assert.is(up.seen.at(-1)!.body.length + up.seen.at(-2)!.body.length, 0);
  assert.is((await c.next()).body, "GET /second 0");
  c.close();
});

Lean("a head split over two reads, HTTP/1.0, Expect and Upgrade go to node:http and are answered", async ({ weir }) => {
  const c1 = await openRaw(weir.port);
  c1.send(`GET /split HTTP/1.1\r\nHo`);
  await new Promise((r) => setTimeout(r, 30));
  c1.send(`st: x\r\n\r\n`);
  assert.is((await c1.next()).body, "GET /split 0");
  c1.close();

  const c2 = await openRaw(weir.port);
  c2.send(`GET /old HTTP/1.0\r\nHost: x\r\n\r\n`);
  const old = await c2.next();
  assert.is(old.body, "GET /old 0");
  assert.ok(await c2.closed(2000), "an HTTP/1.0 client without keep-alive is closed after its answer");

  const c3 = await openRaw(weir.port);
  c3.send(`POST /ask HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n`);
  const cont = await c3.next({ bodiless: true });
  assert.is(cont.status, 100);
  c3.send("ok");
  assert.is((await c3.next()).body, "POST /ask 2");
  c3.close();

  const c4 = await openRaw(weir.port);
  c4.send(GET("/h2c", weir.port, "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"));
  const h2c = await c4.next();
  assert.is(h2c.body, "GET /h2c 0"); // answered over HTTP/1.1, as before the lean listener
  c4.close();
});

Lean("a malformed request is still answered 400 with JSON and never reaches the upstream", async ({ up, weir }) => {
  const seen = up.seen.length;
  const c = await openRaw(weir.port);
  c.send(`GET /x HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n`);
  const r = await c.next();
  c.close();
  assert.is(r.status, 400);
  assert.is(JSON.parse(r.body).code, "WEIR_ERR_BAD_REQUEST");
  assert.is(up.seen.length, seen);
});

Lean("a client that leaves mid-answer has its upstream request aborted", async ({ weir }) => {
  const c = await openRaw(weir.port);
  c.send(GET("/hang", weir.port));
  await new Promise((r) => setTimeout(r, 100));
  c.close();
  const deadline = Date.now() + 2000;
  while (!upstreamClosed.includes("/hang") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.ok(upstreamClosed.includes("/hang"), "the upstream saw its request end");
});

Lean("an idle connection is closed after limits.keepAliveTimeout", async ({ weir }) => {
  const c = await openRaw(weir.port);
  c.send(GET("/idle", weir.port));
  await c.next();
  const t0 = Date.now();
  assert.ok(await c.closed(4000), "closed by the server");
  const waited = Date.now() - t0;
  assert.ok(waited >= 900 && waited < 3500, `closed after ${waited} ms (timeout 1 s, swept once a second)`);
});

Lean("a connection that never sends a request gets a 408 after limits.headersTimeout, as node:http gives it", async ({ weir }) => {
  const c = await openRaw(weir.port);
  const t0 = Date.now();
  const r = await c.next({ timeoutMs: 4000 });
  const waited = Date.now() - t0;
  assert.is(r.status, 408);
  assert.is(JSON.parse(r.body).code, "WEIR_ERR_REQUEST_TIMEOUT");
  assert.is(r.headers["connection"], "close");
  assert.ok(waited >= 900 && waited < 3500, `answered after ${waited} ms (timeout 1 s, swept once a second)`);
  assert.ok(await c.closed(2000), "then closed");
});

Lean("stop() closes idle fast-path connections at once and finishes one in flight", async ({ up }) => {
  const weir = await startWeir({ routes: [{ name: "all", match: { path: "/" }, upstream: up.url }] });
  const idle = await openRaw(weir.port);
  idle.send(GET("/i", weir.port));
  await idle.next();
  const busy = await openRaw(weir.port);
  busy.send(GET("/slow", weir.port));
  await new Promise((r) => setTimeout(r, 30));
  const stopped = weir.stop(2000);
  assert.ok(await idle.closed(500), "the idle connection closed");
  const r = await busy.next();
  assert.is(r.body, "slow");
  assert.is(r.headers["connection"], "close");
  await stopped;
  busy.close();
});

Lean("WEIR_LEAN_LISTENER=0 puts every request through node:http", async ({ up }) => {
  process.env.WEIR_LEAN_LISTENER = "0";
  try {
    const weir = await startWeir({ routes: [{ name: "all", match: { path: "/" }, upstream: up.url }] });
    const res = await request(`${weir.url}/off`);
    assert.is(await res.body.text(), "GET /off 0");
    assert.is(weir.rt.leanListenerStats(), null);
    await weir.stop();
  } finally {
    delete process.env.WEIR_LEAN_LISTENER;
  }
});

Lean.run();
