import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "undici";
import { rawRequest } from "../support/raw-http.js";
import { startRawUpstream } from "../support/raw-upstream.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";

const Forwarding = suite<{ up: TestUpstream; weir: TestWeir }>("forwarding");

Forwarding.before(async (ctx) => {
  ctx.up = await startUpstream();
  ctx.weir = await startWeir({
    upstreams: { api: { targets: [ctx.up.url] } },
    routes: [
      { name: "api", match: { path: "/api" }, upstream: "api", stripPrefix: true },
      { name: "all", match: { path: "/" }, upstream: ctx.up.url },
    ],
  });
});
Forwarding.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

Forwarding("a GET reaches the upstream with the prefix stripped and the query kept", async ({ up, weir }) => {
  const res = await request(`${weir.url}/api/users?id=7`);
  assert.is(res.statusCode, 200);
  const body = (await res.body.json()) as { url: string };
  assert.is(body.url, "/users?id=7");
  assert.is(up.seen.at(-1)!.url, "/users?id=7");
});

Forwarding("X-Request-Id is created, sent upstream and echoed to the client", async ({ up, weir }) => {
  const res = await request(`${weir.url}/x`);
  await res.body.text();
  const id = res.headers["x-request-id"];
  assert.type(id, "string");
  assert.is(up.seen.at(-1)!.headers["x-request-id"], id);
});

Forwarding("hop-by-hop headers and the ones Connection names are stripped", async ({ up, weir }) => {
  // undici (rightly) refuses to send these, so the client is a raw socket.
  const res = await rawRequest(weir.port, "GET /x HTTP/1.1\r\nHost: 127.0.0.1:" + weir.port + "\r\nX-Secret-Hop: 1\r\nConnection: close, X-Secret-Hop\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Connection: x\r\nX-Kept: yes\r\n\r\n");
  assert.is(res.status, 200);
  const h = up.seen.at(-1)!.headers;
  assert.is(h["x-secret-hop"], undefined);
  assert.is(h["te"], undefined);
  assert.is(h["proxy-connection"], undefined);
  assert.is(h["x-kept"], "yes");
  assert.is(h["x-forwarded-for"], "127.0.0.1");
  assert.is(h["x-forwarded-proto"], "http");
  assert.is(h["x-forwarded-host"], `127.0.0.1:${weir.port}`);
});

Forwarding("an unknown path gets 404 with a JSON body and request id", async ({ weir }) => {
  const w = await startWeir({ routes: [{ match: { path: "/only" }, upstream: "http://127.0.0.1:1" }] });
  try {
    const res = await request(`${w.url}/other`);
    assert.is(res.statusCode, 404);
    const body = (await res.body.json()) as { error: string; requestId: string };
    assert.ok(body.error.includes("no route"));
    assert.is(body.requestId, res.headers["x-request-id"]);
  } finally { await w.stop(); }
  void weir;
});

Forwarding("hop-by-hop response headers and the ones the upstream's Connection names are stripped", async ({ weir }) => {
  // A raw upstream: node:http itself would refuse to send some of these.
  const up = await startRawUpstream((socket) => socket.end([
    "HTTP/1.1 200 OK", "Content-Type: text/plain", "Content-Length: 2",
    "Connection: keep-alive, X-Up-Hop", "X-Up-Hop: secret", "Keep-Alive: timeout=99",
    "Proxy-Connection: keep-alive", "Trailer: X-Checksum", "Upgrade: h2c",
    "X-Request-Id: upstream-made-this-up", "X-Up-Kept: yes",
  ].join("\r\n") + "\r\n\r\nok"));
  const w = await startWeir({ routes: [{ match: { path: "/" }, upstream: up.url }] });
  try {
    const res = await rawRequest(w.port, `GET /r HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: mine-1\r\n\r\n`);
    assert.is(res.status, 200);
    assert.is(res.body, "ok");
    for (const h of ["x-up-hop", "proxy-connection", "trailer", "upgrade"]) assert.is(res.headers[h], undefined, `${h} was forwarded`);
    assert.not.match(res.headers["keep-alive"] ?? "", /99/);
    assert.is(res.headers["x-up-kept"], "yes");
    assert.is(res.headers["x-request-id"], "mine-1");
  } finally { await w.stop(); await up.close(); }
  void weir;
});

Forwarding("pipelined requests on one connection are each forwarded once, in order", async ({ up, weir }) => {
  const before = up.seen.length;
  const host = `Host: 127.0.0.1:${weir.port}`;
  const res = await rawRequest(weir.port,
    `POST /p1 HTTP/1.1\r\n${host}\r\nContent-Length: 5\r\n\r\nhello` +
    `GET /p2 HTTP/1.1\r\n${host}\r\n\r\n` +
    `GET /p3 HTTP/1.1\r\n${host}\r\nConnection: close\r\n\r\n`, { timeoutMs: 5000, untilClose: true });
  assert.is(res.status, 200);
  assert.ok(res.closed);
  assert.equal(up.seen.slice(before).map((s) => s.url), ["/p1", "/p2", "/p3"]);
  assert.is(up.seen[before]!.body.toString(), "hello");
  assert.is((res.text.match(/HTTP\/1\.1 200/g) ?? []).length, 3);
});

Forwarding("a HEAD request and a 204 answer carry no body", async ({ weir }) => {
  const up = await startUpstream((req, res) => {
    if (req.url === "/empty") { res.writeHead(204); res.end(); return; }
    res.writeHead(200, { "content-type": "text/plain", "content-length": "11" });
    res.end(req.method === "HEAD" ? undefined : "hello world");
  });
  const w = await startWeir({ routes: [{ match: { path: "/" }, upstream: up.url }] });
  try {
    const head = await request(`${w.url}/h`, { method: "HEAD" });
    assert.is(head.statusCode, 200);
    assert.is(head.headers["content-length"], "11");
    assert.is(await head.body.text(), "");
    const empty = await request(`${w.url}/empty`);
    assert.is(empty.statusCode, 204);
    assert.is(await empty.body.text(), "");
    const after = await request(`${w.url}/h`);
    assert.is(await after.body.text(), "hello world");
  } finally { await w.stop(); await up.close(); }
  void weir;
});

Forwarding("stripPrefix strips on a segment boundary only", async ({ up, weir }) => {
  const res = await request(`${weir.url}/apix/users`);
  await res.body.text();
  assert.is(up.seen.at(-1)!.url, "/apix/users");
  const exact = await request(`${weir.url}/api`);
  await exact.body.text();
  assert.is(up.seen.at(-1)!.url, "/");
});

Forwarding.run();
