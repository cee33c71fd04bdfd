/**
 * HTTPS listener: `listen.tls` serves TLS with the configured certificate, forwards to a plain
 * upstream and tells it so with X-Forwarded-Proto: https.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { readFileSync } from "node:fs";
import { once } from "node:events";
import { connect as tlsConnect } from "node:tls";
import { Agent, request } from "undici";
import { WebSocket, WebSocketServer } from "ws";
import type { AddressInfo } from "node:net";
import { rawRequest } from "../support/raw-http.js";
import { fixturePath } from "../support/fixtures.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";

const CERT = fixturePath("tls", "cert.pem");
const KEY = fixturePath("tls", "key.pem");

interface Ctx { up: TestUpstream; wss: WebSocketServer; weir: TestWeir; agent: Agent; ca: Buffer }

const Https = suite<Ctx>("https listener");

Https.before(async (ctx) => {
  ctx.ca = readFileSync(CERT);
  ctx.up = await startUpstream();
  ctx.wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  await once(ctx.wss, "listening");
  ctx.wss.on("connection", (socket, req) => socket.send(String(req.headers["x-forwarded-proto"])));
  ctx.weir = await startWeir({
    listen: { port: 0, host: "127.0.0.1", tls: { cert: CERT, key: KEY } },
    routes: [
      { match: { path: "/ws" }, upstream: `http://127.0.0.1:${(ctx.wss.address() as AddressInfo).port}` },
      { match: { path: "/" }, upstream: ctx.up.url },
    ],
  });
  // Verify the certificate for real: trust exactly the committed self-signed one.
  ctx.agent = new Agent({ connect: { ca: ctx.ca } });
});
Https.after(async (ctx) => {
  await ctx.agent.close();
  await ctx.weir.stop();
  await ctx.up.close();
  await new Promise<void>((r) => ctx.wss.close(() => r()));
});

Https("the listener's address is an https URL", ({ weir }) => {
  assert.match(weir.url, /^https:\/\/127\.0\.0\.1:\d+$/);
});

Https("a request over TLS succeeds and the upstream sees x-forwarded-proto: https", async ({ weir, up, agent }) => {
  const res = await request(`${weir.url}/secure/path?q=1`, { dispatcher: agent });
  assert.is(res.statusCode, 200);
  const body = (await res.body.json()) as { url: string };
  assert.is(body.url, "/secure/path?q=1");
  const seen = up.seen.at(-1)!;
  assert.is(seen.headers["x-forwarded-proto"], "https");
  assert.is(seen.headers["x-forwarded-for"], "127.0.0.1");
  assert.type(res.headers["x-request-id"], "string");
});

Https("the certificate presented is the configured one and verifies for 127.0.0.1", async ({ weir, ca }) => {
  const socket = tlsConnect({ host: "127.0.0.1", port: weir.port, ca, servername: undefined });
  await once(socket, "secureConnect");
  assert.ok(socket.authorized, String(socket.authorizationError));
  const presented = socket.getPeerX509Certificate();
  assert.ok(presented?.checkIP("127.0.0.1"));
  socket.destroy();
});

Https("a POST body goes through TLS intact", async ({ weir, up, agent }) => {
  const payload = "x".repeat(200_000);
  const res = await request(`${weir.url}/upload`, { method: "POST", body: payload, dispatcher: agent });
  assert.is(res.statusCode, 200);
  await res.body.text();
  assert.is(up.seen.at(-1)!.body.toString(), payload);
});

Https("a WebSocket upgrade over TLS (wss) is proxied and marked https", async ({ weir, ca }) => {
  const ws = new WebSocket(`${weir.url.replace(/^https/, "wss")}/ws`, { ca });
  const [message] = (await once(ws, "message")) as [Buffer];
  assert.is(message.toString(), "https");
  ws.terminate();
});

Https("over TLS, simple requests on one connection take the lean fast path and a split body goes to node:https", async ({ weir, up, ca }) => {
  const before = weir.rt.leanListenerStats()!;
  const socket = tlsConnect({ host: "127.0.0.1", port: weir.port, ca });
  await once(socket, "secureConnect");
  let text = "";
  socket.on("data", (d: Buffer) => { text += d.toString("latin1"); });
  const answers = async (n: number) => {
    const deadline = Date.now() + 3000;
    while ((text.match(/HTTP\/1\.1 200 OK/g) ?? []).length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  };
  socket.write("GET /t1 HTTP/1.1\r\nHost: x\r\n\r\n");
  await answers(1);
  socket.write("POST /t2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody");
  await answers(2);
  assert.is(up.seen.at(-1)!.body.toString(), "body");
  assert.is(weir.rt.leanListenerStats()!.served, before.served + 2);
  socket.write("POST /t3 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
  await new Promise((r) => setTimeout(r, 30));
  socket.write("split");
  await answers(3);
  socket.destroy();
  assert.is(up.seen.at(-1)!.body.toString(), "split");
  assert.is(weir.rt.leanListenerStats()!.handedOff, before.handedOff + 1);
  assert.match(text, /"url":"\/t3"/);
});

Https("plain HTTP on the TLS port gets no HTTP answer", async ({ weir, up }) => {
  const before = up.seen.length;
  const res = await rawRequest(weir.port, "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", { timeoutMs: 3000 });
  assert.is(res.status, 0);
  assert.is(up.seen.length, before);
});

Https.run();
