/**
 * Request hygiene: what Weir refuses before any upstream is contacted (framing that a proxy and an
 * upstream could read differently, forbidden methods, oversized or slow requests, h2c, paths that
 * escape their root), and how it canonicalises the paths it does forward. Every request here is
 * written on a raw socket, because a well-behaved client would never send it.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import type { IncomingMessage } from "node:http";
import { rawRequest, type RawResponse } from "../support/raw-http.js";
import { assertLocalReply } from "../support/local-reply.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";

const MAX_HEADER_BYTES = 2048;
const MAX_BODY_BYTES = 1024;

/** What the sink upstream saw of one streamed request body. */
interface SinkRecord { url: string; bytes: number; ended: boolean; aborted: Promise<boolean> }

interface Ctx { up: TestUpstream; sink: TestUpstream; sinkSeen: SinkRecord[]; weir: TestWeir }

/** An upstream that reads request bodies as they stream and records whether they ended or were cut. */
async function startSink(seen: SinkRecord[]): Promise<TestUpstream> {
  return startUpstream((req: IncomingMessage, res) => {
    const record: SinkRecord = { url: req.url!, bytes: 0, ended: false, aborted: Promise.resolve(false) };
    record.aborted = new Promise((resolve) => {
      req.on("data", (c: Buffer) => { record.bytes += c.length; });
      req.on("end", () => { record.ended = true; res.end("ok"); resolve(false); });
      req.on("close", () => resolve(!record.ended));
    });
    seen.push(record);
  }, { streaming: true });
}

const head = (port: number, lines: string[] = [], requestLine = "GET /x HTTP/1.1") =>
  [requestLine, `Host: 127.0.0.1:${port}`, ...lines].join("\r\n") + "\r\n\r\n";

function assertRefused(ctx: Ctx, res: RawResponse, status: number, code?: string): void {
  assertLocalReply(res, status, code);
  assert.is(ctx.up.seen.length, 0, "the upstream saw the refused request");
}

// ---------------------------------------------------------------------------------------------
const Framing = suite<Ctx>("request hygiene: framing and methods");

async function setUp(ctx: Ctx): Promise<void> {
  ctx.sinkSeen = [];
  ctx.up = await startUpstream();
  ctx.sink = await startSink(ctx.sinkSeen);
  ctx.weir = await startWeir({
    limits: { maxHeaderBytes: MAX_HEADER_BYTES, maxBodyBytes: MAX_BODY_BYTES, headersTimeout: "1s", requestTimeout: "1s" },
    routes: [
      { name: "sink", match: { path: "/sink" }, upstream: ctx.sink.url },
      { name: "all", match: { path: "/" }, upstream: ctx.up.url },
    ],
  });
}
async function tearDown(ctx: Ctx): Promise<void> {
  await ctx.weir.stop();
  await ctx.up.close();
  await ctx.sink.close();
}
const clearSeen = (ctx: Ctx) => { ctx.up.seen.length = 0; ctx.sinkSeen.length = 0; };

Framing.before(setUp);
Framing.after(tearDown);
Framing.before.each(clearSeen);

Framing("a request with both Content-Length and Transfer-Encoding is 400", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["Content-Length: 5", "Transfer-Encoding: chunked"], "POST /x HTTP/1.1") + "0\r\n\r\n");
  assertRefused(ctx, res, 400, "WEIR_ERR_BAD_REQUEST");
  assert.is(res.headers["connection"], "close", "the connection must not be reused after a smuggling attempt");
});

Framing("a request with two Content-Length headers is 400", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["Content-Length: 5", "Content-Length: 5"], "POST /x HTTP/1.1") + "hello");
  assertRefused(ctx, res, 400, "WEIR_ERR_BAD_REQUEST");
});

Framing("a Transfer-Encoding other than a single chunked is 400", async (ctx) => {
  for (const te of ["gzip, chunked", "chunked, identity", "identity", "chunked\r\nTransfer-Encoding: chunked"]) {
    const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, [`Transfer-Encoding: ${te}`], "POST /x HTTP/1.1") + "0\r\n\r\n");
    assertRefused(ctx, res, 400, "WEIR_ERR_BAD_REQUEST");
  }
});

Framing("a Content-Length that is not a plain number is 400", async (ctx) => {
  for (const cl of ["+5", "5, 5", "-1", "0x5", "5 5"]) {
    const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, [`Content-Length: ${cl}`], "POST /x HTTP/1.1") + "hello");
    assertRefused(ctx, res, 400, "WEIR_ERR_BAD_REQUEST");
  }
});

Framing("an HTTP/1.1 request without Host is 400", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, "GET /x HTTP/1.1\r\nX-No-Host: 1\r\n\r\n");
  assertRefused(ctx, res, 400, "WEIR_ERR_BAD_REQUEST");
});

Framing("a request with two Host headers is 400", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["Host: evil.example"]));
  assertRefused(ctx, res, 400, "WEIR_ERR_BAD_REQUEST");
});

Framing("an absolute-form URL whose authority differs from Host is 400", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, [], "GET http://evil.example/x HTTP/1.1"));
  assertRefused(ctx, res, 400, "WEIR_ERR_BAD_REQUEST");
});

Framing("an absolute-form URL that agrees with Host is forwarded as a path", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["Connection: close"], `GET http://127.0.0.1:${ctx.weir.port}/x?q=1 HTTP/1.1`));
  assert.is(res.status, 200);
  assert.is(ctx.up.seen[0]?.url, "/x?q=1");
});

Framing("TRACE is 405", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, [], "TRACE /x HTTP/1.1"));
  assertRefused(ctx, res, 405, "WEIR_ERR_METHOD_NOT_ALLOWED");
});

Framing("CONNECT is 405", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n");
  assertRefused(ctx, res, 405, "WEIR_ERR_METHOD_NOT_ALLOWED");
});

Framing("an Upgrade to h2c is not performed: the request is answered over HTTP/1.1 and the upgrade never forwarded", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA"]), { untilClose: true });
  assert.is(res.status, 200);
  assert.not.match(res.text, /101 Switching/);
  assert.is(res.headers["connection"], "close");
  assert.is(res.closed, true);
  assert.is(ctx.up.seen.length, 1);
  const seen = ctx.up.seen[0]!.headers;
  assert.is(seen["upgrade"], undefined);
  assert.is(seen["http2-settings"], undefined);
});

Framing("an Upgrade to h2c with a request body is refused (the socket has no parser left for it)", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA", "Content-Length: 3"], "POST /x HTTP/1.1") + "abc");
  assertRefused(ctx, res, 400, "WEIR_ERR_BAD_REQUEST");
  assert.not.match(res.text, /101 Switching/);
});

Framing("a malformed request line is 400", async (ctx) => {
  for (const line of ["GET /x HTTP/1.1 extra", "G@T /x HTTP/1.1", "GET /x HTTP/9.9", "GET  HTTP/1.1"]) {
    const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, [], line));
    assertRefused(ctx, res, 400, "WEIR_ERR_BAD_REQUEST");
  }
});

Framing("header names or values with forbidden bytes are 400", async (ctx) => {
  for (const bad of ["Bad Name: x", "X-Nul: a\x00b", "X-Bare-CR: a\rb", "X-Ctl: a\x01b", " X-Folded: continuation"]) {
    const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["X-Ok: 1", bad]));
    assertRefused(ctx, res, 400, "WEIR_ERR_BAD_REQUEST");
  }
});

Framing("a refused request still carries the client's X-Request-Id", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["X-Request-Id: trace-me-42"], "TRACE /x HTTP/1.1"));
  const body = assertLocalReply(res, 405);
  assert.is(body.requestId, "trace-me-42");
});

Framing.run();

// ---------------------------------------------------------------------------------------------
const Limits = suite<Ctx>("request hygiene: size limits");
Limits.before(setUp);
Limits.after(tearDown);
Limits.before.each(clearSeen);

Limits("headers over limits.maxHeaderBytes are 431", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, [`X-Big: ${"a".repeat(MAX_HEADER_BYTES + 100)}`]));
  assertRefused(ctx, res, 431, "WEIR_ERR_HEADERS_TOO_LARGE");
});

Limits("headers just under limits.maxHeaderBytes are forwarded", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["Connection: close", `X-Big: ${"a".repeat(MAX_HEADER_BYTES - 200)}`]));
  assert.is(res.status, 200);
  assert.is(ctx.up.seen.length, 1);
});

Limits("a Content-Length over limits.maxBodyBytes is 413 before any of the body is sent", async (ctx) => {
  // Only the head goes out: an answer at all proves Weir did not wait for the body.
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, [`Content-Length: ${MAX_BODY_BYTES + 1}`], "POST /x HTTP/1.1"), { timeoutMs: 5000 });
  assertRefused(ctx, res, 413, "WEIR_ERR_BODY_TOO_LARGE");
  assert.is(res.headers["connection"], "close", "the unread body must not be parsed as the next request");
});

Limits("Expect: 100-continue with a Content-Length over the limit gets 413 and no 100 Continue", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["Expect: 100-continue", `Content-Length: ${MAX_BODY_BYTES + 1}`], "POST /x HTTP/1.1"), { timeoutMs: 5000 });
  assert.not.match(res.text, /100 Continue/, "the client was invited to send a body that is then refused");
  assertRefused(ctx, res, 413, "WEIR_ERR_BODY_TOO_LARGE");
});

Limits("Expect: 100-continue within the limit gets 100 Continue and is forwarded without the Expect", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, [head(ctx.weir.port, ["Expect: 100-continue", "Content-Length: 5", "Connection: close"], "POST /x HTTP/1.1"), "hello"], { gapMs: 100, timeoutMs: 5000, untilClose: true });
  assert.match(res.text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
  assert.is(ctx.up.seen[0]?.body.toString(), "hello");
  assert.is(ctx.up.seen[0]?.headers["expect"], undefined);
});

Limits("Expect: 100-continue on a request that is refused (a bad path) gets the refusal and no 100 Continue", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["Expect: 100-continue", "Content-Length: 5"], "POST /b%2Fc HTTP/1.1"), { timeoutMs: 5000 });
  assert.not.match(res.text, /100 Continue/, "the client was invited to send a body that is then refused");
  assert.is(res.status, 400);
  assert.is(ctx.up.seen.length, 0);
});

Limits("a body of exactly limits.maxBodyBytes is forwarded", async (ctx) => {
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["Connection: close", `Content-Length: ${MAX_BODY_BYTES}`], "POST /x HTTP/1.1") + "b".repeat(MAX_BODY_BYTES));
  assert.is(res.status, 200);
  assert.is(ctx.up.seen[0]?.body.length, MAX_BODY_BYTES);
});

Limits("a chunked body that crosses limits.maxBodyBytes is 413 and the upstream request is aborted", async (ctx) => {
  const chunk = (n: number) => `${n.toString(16)}\r\n${"c".repeat(n)}\r\n`;
  const res = await rawRequest(ctx.weir.port, [
    head(ctx.weir.port, ["Transfer-Encoding: chunked"], "POST /sink HTTP/1.1"),
    chunk(600),
    chunk(600),
    chunk(600),
  ], { gapMs: 50, timeoutMs: 5000 });
  assertLocalReply(res, 413, "WEIR_ERR_BODY_TOO_LARGE");
  assert.is(ctx.up.seen.length, 0);
  // Weir streams, so the sink may have seen the start of the request; it must never see it end.
  for (const r of ctx.sinkSeen) {
    assert.ok(await r.aborted, "the upstream request was completed instead of aborted");
    assert.ok(r.bytes <= MAX_BODY_BYTES, `the upstream received ${r.bytes} bytes, more than the limit`);
  }
});

Limits.run();

// ---------------------------------------------------------------------------------------------
const Slow = suite<Ctx>("request hygiene: slow clients");
Slow.before(setUp);
Slow.after(tearDown);
Slow.before.each(clearSeen);

Slow("headers that trickle in slower than limits.headersTimeout get 408 within seconds", async (ctx) => {
  const started = Date.now();
  // The head is never finished; node:http's 1 s timeout, checked every second, must fire.
  const res = await rawRequest(ctx.weir.port, `GET /x HTTP/1.1\r\nHost: 127.0.0.1:${ctx.weir.port}\r\nX-Slow: 1\r\n`, { timeoutMs: 8000 });
  const elapsed = Date.now() - started;
  assertRefused(ctx, res, 408, "WEIR_ERR_REQUEST_TIMEOUT");
  assert.ok(elapsed >= 900 && elapsed < 3000, `408 arrived after ${elapsed} ms`);
});

Slow("a body slower than limits.requestTimeout gets 408 within seconds and the upstream request is aborted", async (ctx) => {
  const started = Date.now();
  const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["Content-Length: 100"], "POST /sink HTTP/1.1") + "only a part", { timeoutMs: 8000 });
  const elapsed = Date.now() - started;
  assertLocalReply(res, 408, "WEIR_ERR_REQUEST_TIMEOUT");
  assert.ok(elapsed >= 900 && elapsed < 3000, `408 arrived after ${elapsed} ms`);
  assert.is(ctx.up.seen.length, 0);
  for (const r of ctx.sinkSeen) assert.ok(await r.aborted, "the upstream request was completed instead of aborted");
});

Slow.run();

// ---------------------------------------------------------------------------------------------
const Paths = suite<Ctx>("request hygiene: path normalisation");
Paths.before(setUp);
Paths.after(tearDown);
Paths.before.each(clearSeen);

const forwarded: [string, string][] = [
  ["/a/../b", "/b"],
  ["/a/%2e%2e/b", "/b"],
  ["/a/%2E%2E/b", "/b"],
  ["//b", "/b"],
  ["/a//b/./c", "/a/b/c"],
  ["/%61", "/a"],
  ["/%7euser", "/~user"],
  ["/a%20b", "/a%20b"],
  ["/a/../b?x=/../y", "/b?x=/../y"],
];
for (const [sent, expected] of forwarded) {
  Paths(`${sent} is forwarded as ${expected}`, async (ctx) => {
    const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, ["Connection: close"], `GET ${sent} HTTP/1.1`));
    assert.is(res.status, 200, res.text.slice(0, 300));
    assert.is(ctx.up.seen.length, 1);
    assert.is(ctx.up.seen[0]!.url, expected);
  });
}

const refused = ["/b%2Fc", "/b%2fc", "/b%5Cc", "/b%00", "/..", "/a/../..", "/%2e%2e", "/b%zz", "/b%4"];
for (const sent of refused) {
  Paths(`${sent} is 400 and never forwarded`, async (ctx) => {
    const res = await rawRequest(ctx.weir.port, head(ctx.weir.port, [], `GET ${sent} HTTP/1.1`));
    assertRefused(ctx, res, 400, "WEIR_ERR_BAD_REQUEST");
  });
}

Paths.run();
