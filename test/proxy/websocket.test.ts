/**
 * WebSocket upgrades through Weir: a real `ws` client and server talk through it both ways, and an
 * upstream that does not really switch protocols (a 200, a wrong Sec-WebSocket-Accept) gets the
 * client a 502 instead of a half-open tunnel.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { once } from "node:events";
import type { IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { rawRequest } from "../support/raw-http.js";
import { assertLocalReply } from "../support/local-reply.js";
import { startRawUpstream, type RawUpstream } from "../support/raw-upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";

interface Ctx {
  wss: WebSocketServer;
  wsUrl: string;
  upgrades: IncomingMessage[];
  answers200: RawUpstream;
  wrongAccept: RawUpstream;
  weir: TestWeir;
}

const WebSockets = suite<Ctx>("websocket");

WebSockets.before(async (ctx) => {
  ctx.upgrades = [];
  ctx.wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await once(ctx.wss, "listening");
  ctx.wsUrl = `http://127.0.0.1:${(ctx.wss.address() as AddressInfo).port}`;
  ctx.wss.on("connection", (socket, req) => {
    ctx.upgrades.push(req);
    socket.send(`hello ${req.url}`);
    socket.on("message", (data, isBinary) => socket.send(isBinary ? data : `echo: ${data.toString()}`, { binary: isBinary }));
  });
  ctx.answers200 = await startRawUpstream((s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nno"));
  ctx.wrongAccept = await startRawUpstream((s) =>
    s.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: bm90IHRoZSByaWdodCBrZXk=\r\n\r\n"));
  ctx.weir = await startWeir({
    routes: [
      { match: { path: "/ws" }, upstream: ctx.wsUrl, stripPrefix: true },
      { match: { path: "/guarded" }, upstream: ctx.wsUrl, plugins: [{ use: "key-auth", config: { keys: { "ws-key": "wendy" } } }] },
      { match: { path: "/answers-200" }, upstream: ctx.answers200.url },
      { match: { path: "/wrong-accept" }, upstream: ctx.wrongAccept.url },
    ],
  });
});
WebSockets.after(async (ctx) => {
  await ctx.weir.stop();
  for (const c of ctx.wss.clients) c.terminate();
  await new Promise<void>((r) => ctx.wss.close(() => r()));
  await ctx.answers200.close();
  await ctx.wrongAccept.close();
});

const wsBase = (weir: TestWeir) => weir.url.replace(/^http/, "ws");

/** Collects the next `n` messages of a socket as strings or Buffers. */
function nextMessages(ws: WebSocket, n: number): Promise<(string | Buffer)[]> {
  return new Promise((resolve, reject) => {
    const got: (string | Buffer)[] = [];
    const onMessage = (data: Buffer, isBinary: boolean) => {
      got.push(isBinary ? data : data.toString());
      if (got.length === n) { ws.off("message", onMessage); resolve(got); }
    };
    ws.on("message", onMessage);
    ws.once("error", reject);
  });
}

/** Resolves with the HTTP status of a refused upgrade (the 'unexpected-response' event of ws). */
function refusedStatus(ws: WebSocket): Promise<{ status: number; headers: IncomingMessage["headers"]; body: string }> {
  return new Promise((resolve, reject) => {
    ws.once("open", () => reject(new Error("the upgrade succeeded")));
    ws.once("unexpected-response", (_req, res: IncomingMessage) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    ws.once("error", (err) => reject(err));
  });
}

WebSockets("a route's request plugins run for an upgrade: no key is a 401 that never reaches the upstream", async (ctx) => {
  const before = ctx.upgrades.length;
  const refused = await refusedStatus(new WebSocket(`${wsBase(ctx.weir)}/guarded/chat`));
  assert.is(refused.status, 401);
  assert.is(ctx.upgrades.length, before, "the upstream saw no upgrade");
  const ws = new WebSocket(`${wsBase(ctx.weir)}/guarded/chat`, { headers: { "x-api-key": "ws-key" } });
  const first = nextMessages(ws, 1);
  await once(ws, "open");
  assert.equal(await first, ["hello /guarded/chat"]);
  assert.is(ctx.upgrades.at(-1)!.headers["x-api-key"], undefined, "the key is not forwarded");
  ws.close();
});

WebSockets("an upgrade goes through Weir and text flows both ways", async (ctx) => {
  const ws = new WebSocket(`${wsBase(ctx.weir)}/ws/chat?room=1`);
  const first = nextMessages(ws, 1);
  await once(ws, "open");
  assert.equal(await first, ["hello /chat?room=1"]);
  const replies = nextMessages(ws, 3);
  ws.send("one");
  ws.send("two");
  ws.send(Buffer.from([0, 1, 2, 255]));
  const got = await replies;
  assert.equal(got.slice(0, 2), ["echo: one", "echo: two"]);
  assert.equal(got[2], Buffer.from([0, 1, 2, 255]));
  ws.close(1000, "bye");
  const [code] = (await once(ws, "close")) as [number];
  assert.is(code, 1000);
});

WebSockets("the upstream sees the forwarding headers on the upgrade request", async (ctx) => {
  const before = ctx.upgrades.length;
  const ws = new WebSocket(`${wsBase(ctx.weir)}/ws/headers`, { headers: { "x-request-id": "ws-trace-1" } });
  const upgrade = new Promise<IncomingMessage>((r) => ws.once("upgrade", r));
  await once(ws, "open");
  const res = await upgrade;
  assert.is(res.headers["x-request-id"], "ws-trace-1");
  const seen = ctx.upgrades[before]!;
  assert.is(seen.headers["x-request-id"], "ws-trace-1");
  assert.is(seen.headers["x-forwarded-for"], "127.0.0.1");
  assert.is(seen.headers["x-forwarded-proto"], "http");
  ws.terminate();
});

WebSockets("a large message and many small ones arrive intact", async (ctx) => {
  const ws = new WebSocket(`${wsBase(ctx.weir)}/ws/bulk`);
  const hello = nextMessages(ws, 1);
  await once(ws, "open");
  await hello;
  const big = Buffer.alloc(2 * 1024 * 1024, 7);
  const replies = nextMessages(ws, 101);
  ws.send(big);
  for (let i = 0; i < 100; i++) ws.send(`m${i}`);
  const got = await replies;
  assert.equal(got[0], big);
  assert.equal(got.slice(1), Array.from({ length: 100 }, (_, i) => `echo: m${i}`));
  ws.terminate();
});

WebSockets("an upstream that answers the upgrade with 200 gets the client a 502", async (ctx) => {
  const res = await refusedStatus(new WebSocket(`${wsBase(ctx.weir)}/answers-200`));
  assertLocalReply(res, 502, "WEIR_ERR_UPSTREAM_BAD_RESPONSE");
});

WebSockets("an upstream with a wrong Sec-WebSocket-Accept gets the client a 502", async (ctx) => {
  const res = await refusedStatus(new WebSocket(`${wsBase(ctx.weir)}/wrong-accept`));
  assertLocalReply(res, 502, "WEIR_ERR_UPSTREAM_BAD_RESPONSE");
  assert.ok(ctx.wrongAccept.heads.length >= 1);
});

WebSockets("an upgrade to an upstream that refuses connections is 502", async (ctx) => {
  const w = await startWeir({ routes: [{ match: { path: "/" }, upstream: "http://127.0.0.1:1" }] });
  try {
    const res = await refusedStatus(new WebSocket(`${wsBase(w)}/x`));
    assertLocalReply(res, 502);
  } finally { await w.stop(); }
  void ctx;
});

WebSockets("an upgrade without Sec-WebSocket-Key is 400 and never forwarded", async (ctx) => {
  const before = ctx.upgrades.length;
  const res = await rawRequest(ctx.weir.port, `GET /ws/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n`);
  assertLocalReply(res, 400, "WEIR_ERR_BAD_REQUEST");
  assert.is(ctx.upgrades.length, before);
});

WebSockets.run();
