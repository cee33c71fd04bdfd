/**
 * The parser boundary, on both listeners (the lean fast path and node:http alone): requests that
 * once took the process down, let a request through after a refusal, or told a client "400" for
 * a request that had been proxied. Each test is named after what broke. A recording upstream
 * (a raw TCP server with its own parser) shows exactly which requests Weir forwarded.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { exchange, type ExchangeResult } from "../support/raw-exchange.js";
import { assertLocalReply } from "../support/local-reply.js";
import { startRecordingUpstream, type RecordingUpstream } from "../support/recording-upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";

interface Ctx { up: RecordingUpstream; weirs: Record<Listener, TestWeir> }
type Listener = "lean" | "node:http";
const LISTENERS: Listener[] = ["lean", "node:http"];

async function setUp(ctx: Ctx): Promise<void> {
  ctx.up = await startRecordingUpstream();
  const config = { limits: { maxHeaderBytes: 32768, headersTimeout: "2s", requestTimeout: "2s" }, routes: [{ name: "all", match: { path: "/" }, upstream: ctx.up.url }] };
  const lean = await startWeir(config);
  process.env.WEIR_LEAN_LISTENER = "0";
  try {
    ctx.weirs = { lean, "node:http": await startWeir(config) };
  } finally {
    delete process.env.WEIR_LEAN_LISTENER;
  }
}
async function tearDown(ctx: Ctx): Promise<void> {
  await ctx.weirs.lean.stop();
  await ctx.weirs["node:http"].stop();
  await ctx.up.close();
}
const clearSeen = (ctx: Ctx) => { ctx.up.requests.length = 0; ctx.up.problems.length = 0; };

/** The upstream saw these requests ("METHOD target"), and nothing it could misread. */
function assertForwarded(ctx: Ctx, expected: string[]): void {
  assert.equal(ctx.up.problems, [], "the upstream received bytes it could not parse");
  assert.equal(ctx.up.requests.map((r) => `${r.method} ${r.target}`), expected);
}

/** The listener still answers an ordinary request (the process is up, the listener not wedged). */
async function assertStillServing(weir: TestWeir): Promise<void> {
  const r = await exchange(weir.port, ["GET /still-up HTTP/1.1\r\nHost: a\r\n\r\n"], { done: (a) => a.length === 1 });
  assert.is(r.answers[0]?.status, 200, "an ordinary request after the case was not answered");
}

const send = (weir: TestWeir, payload: string | string[]): Promise<ExchangeResult> =>
  exchange(weir.port, Array.isArray(payload) ? payload : [payload], { idleMs: 300 });

const H = "Host: a\r\n";
const manyHeaders = (n: number) => Array.from({ length: n }, (_, i) => `X-H${i}: v\r\n`).join("");

// ---------------------------------------------------------------------------------------------
const Crash = suite<Ctx>("parser boundary: no request takes the process down");
Crash.before(setUp);
Crash.after(tearDown);
Crash.before.each(clearSeen);

for (const listener of LISTENERS) {
  Crash(`${listener}: a request with 32 or more header fields in one read is proxied (it threw a TypeError in the lean listener)`, async (ctx) => {
    const weir = ctx.weirs[listener];
    for (const n of [31, 32, 33, 64, 100]) {
      clearSeen(ctx);
      const r = await send(weir, `GET /many-${n} HTTP/1.1\r\n${H}${manyHeaders(n)}\r\n`);
      assert.is(r.answers.length, 1, `${n} extra headers: ${JSON.stringify(r)}`);
      assert.is(r.answers[0]!.status, 200);
      assertForwarded(ctx, [`GET /many-${n}`]);
      const seen = ctx.up.requests[0]!.headers;
      assert.is(seen.filter(([name]) => name.startsWith("x-h")).length, n, "headers were lost on the way");
    }
    await assertStillServing(weir);
  });

  Crash(`${listener}: a chunked body with trailers and a request pipelined behind it are both proxied (the trailers threw in the lean listener)`, async (ctx) => {
    const weir = ctx.weirs[listener];
    const r = await send(weir, `POST /with-trailers HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\nGET /behind HTTP/1.1\r\n${H}\r\n`);
    assert.equal(r.answers.map((a) => a.status), [200, 200]);
    assertForwarded(ctx, ["POST /with-trailers", "GET /behind"]);
    assert.is(ctx.up.requests[0]!.body.toString(), "abc");
    await assertStillServing(weir);
  });

  Crash(`${listener}: a request with 40 header fields behind a simple one in the same read is proxied`, async (ctx) => {
    const weir = ctx.weirs[listener];
    const r = await send(weir, `GET /first HTTP/1.1\r\n${H}\r\nGET /second HTTP/1.1\r\n${H}${manyHeaders(40)}\r\n`);
    assert.equal(r.answers.map((a) => a.status), [200, 200]);
    assertForwarded(ctx, ["GET /first", "GET /second"]);
    await assertStillServing(weir);
  });

  Crash(`${listener}: 2,100 header fields (more than node:http's default count) reach the upstream whole or not at all`, async (ctx) => {
    const weir = ctx.weirs[listener];
    const fields = Array.from({ length: 2100 }, (_, i) => `a${i}:1\r\n`).join("");
    const r = await send(weir, `GET /lots HTTP/1.1\r\n${H}${fields}\r\n`);
    assert.is(r.answers.length, 1);
    if (r.answers[0]!.status === 200) {
      assert.is(ctx.up.requests[0]!.headers.filter(([n]) => /^a\d+$/.test(n)).length, 2100, "headers were dropped");
    } else {
      assertLocalReply(r.answers[0]!, 431, "WEIR_ERR_HEADERS_TOO_LARGE");
      assertForwarded(ctx, []);
    }
    await assertStillServing(weir);
  });
}

Crash.run();

// ---------------------------------------------------------------------------------------------
const Refusal = suite<Ctx>("parser boundary: nothing read after a refusal reaches an upstream");
Refusal.before(setUp);
Refusal.after(tearDown);
Refusal.before.each(clearSeen);

for (const listener of LISTENERS) {
  Refusal(`${listener}: a request pipelined behind Transfer-Encoding: gzip, chunked (refused) is never proxied`, async (ctx) => {
    const weir = ctx.weirs[listener];
    const r = await send(weir, `POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n`);
    assert.is(r.answers.length, 1, JSON.stringify(r.answers));
    assertLocalReply(r.answers[0]!, 400, "WEIR_ERR_BAD_REQUEST");
    assert.is(r.answers[0]!.headers["connection"], "close");
    assert.ok(r.closed, "the connection stayed open after the refusal");
    await new Promise((res) => setTimeout(res, 100));
    assertForwarded(ctx, []);
  });

  Refusal(`${listener}: a request pipelined behind one with two Host headers (refused) is never proxied`, async (ctx) => {
    const weir = ctx.weirs[listener];
    const r = await send(weir, `GET / HTTP/1.1\r\n${H}Host: b\r\n\r\nGET /smuggled HTTP/1.1\r\n${H}\r\n`);
    assert.is(r.answers.length, 1, JSON.stringify(r.answers));
    assertLocalReply(r.answers[0]!, 400, "WEIR_ERR_BAD_REQUEST");
    assert.ok(r.closed);
    await new Promise((res) => setTimeout(res, 100));
    assertForwarded(ctx, []);
  });

  Refusal(`${listener}: a request sent after a refusal, in a later read, is never proxied`, async (ctx) => {
    const weir = ctx.weirs[listener];
    const r = await exchange(weir.port, [`GET / HTTP/1.1\r\n${H}Host: b\r\n\r\n`, `GET /later HTTP/1.1\r\n${H}\r\n`], { gapMs: 30, idleMs: 300 });
    assertLocalReply(r.answers[0]!, 400, "WEIR_ERR_BAD_REQUEST");
    assert.is(r.answers.length, 1);
    await new Promise((res) => setTimeout(res, 100));
    assertForwarded(ctx, []);
  });

  Refusal(`${listener}: requests pipelined behind a refused one in the middle of a pipeline are never proxied`, async (ctx) => {
    const weir = ctx.weirs[listener];
    const r = await send(weir, `GET /one HTTP/1.1\r\n${H}\r\nGET /two HTTP/1.1\r\n${H}Content-Length: 1\r\nContent-Length: 2\r\n\r\nxGET /three HTTP/1.1\r\n${H}\r\n`);
    await new Promise((res) => setTimeout(res, 100));
    // The first is answered with its own response; the second (two Content-Lengths) is refused
    // and the connection closed; the third was read after the refusal.
    assert.equal(r.answers.map((a) => a.upSeq === null ? a.status : "up"), ["up", 400]);
    assertForwarded(ctx, ["GET /one"]);
  });
}

Refusal.run();

// ---------------------------------------------------------------------------------------------
const Truth = suite<Ctx>("parser boundary: the client is told what was forwarded");
Truth.before(setUp);
Truth.after(tearDown);
Truth.before.each(clearSeen);

for (const listener of LISTENERS) {
  Truth(`${listener}: a valid request followed by junk in the same read gets its own answer, then 400 and close (it was proxied while the client saw only a 400)`, async (ctx) => {
    const weir = ctx.weirs[listener];
    const r = await send(weir, `POST /first HTTP/1.1\r\n${H}Content-Length: 2\r\n\r\nokJUNK\x01\r\n\r\n`);
    await new Promise((res) => setTimeout(res, 100));
    const forwarded = ctx.up.requests.map((x) => `${x.method} ${x.target}`);
    if (forwarded.length === 0) {
      assert.is(r.answers.filter((a) => a.upSeq !== null).length, 0);
    } else {
      assert.equal(forwarded, ["POST /first"]);
      assert.is(r.answers[0]?.upSeq, 1, "the proxied request's answer did not reach the client");
      assert.is(r.answers.length, 2);
      assertLocalReply(r.answers[1]!, 400, "WEIR_ERR_BAD_REQUEST");
      assert.is(r.answers[1]!.headers["connection"], "close");
    }
    assert.ok(r.closed, "the connection stayed open after the junk");
  });

  Truth(`${listener}: a valid request followed by a request line with a bad version in the same read gets its own answer first`, async (ctx) => {
    const weir = ctx.weirs[listener];
    const r = await send(weir, `GET /first HTTP/1.1\r\n${H}\r\nGET /second HTTP/7.7\r\n${H}\r\n`);
    await new Promise((res) => setTimeout(res, 100));
    assertForwarded(ctx, ["GET /first"]);
    assert.equal(r.answers.map((a) => a.upSeq === null ? a.status : "up"), ["up", 400]);
    assert.ok(r.closed);
  });

  Truth(`${listener}: junk in a later read, while the request before it may still be in flight, comes after that request's answer`, async (ctx) => {
    const weir = ctx.weirs[listener];
    const r = await send(weir, [`GET /first HTTP/1.1\r\n${H}\r\n`, "\x00\x01\x02 junk\r\n\r\n"]);
    await new Promise((res) => setTimeout(res, 100));
    assertForwarded(ctx, ["GET /first"]);
    assert.equal(r.answers.map((a) => a.upSeq === null ? a.status : "up"), ["up", 400]);
  });
}

Truth.run();

// ---------------------------------------------------------------------------------------------
const Versions = suite<Ctx>("parser boundary: versions and targets HTTP/1.1 does not allow");
Versions.before(setUp);
Versions.after(tearDown);
Versions.before.each(clearSeen);

for (const listener of LISTENERS) {
  Versions(`${listener}: HTTP/1.0 with Transfer-Encoding: chunked is 400 and closes (it was proxied and kept alive)`, async (ctx) => {
    const weir = ctx.weirs[listener];
    const r = await send(weir, `POST / HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /behind HTTP/1.1\r\n${H}\r\n`);
    assert.is(r.answers.length, 1);
    assertLocalReply(r.answers[0]!, 400, "WEIR_ERR_BAD_REQUEST");
    assert.is(r.answers[0]!.headers["connection"], "close");
    assert.ok(r.closed);
    assertForwarded(ctx, []);
  });

  Versions(`${listener}: a bare HTTP/0.9 request line is refused (it was proxied)`, async (ctx) => {
    const weir = ctx.weirs[listener];
    for (const payload of ["GET /\r\n\r\n", "GET /nine HTTP/0.9\r\nHost: a\r\n\r\n"]) {
      const r = await send(weir, payload);
      assert.ok(r.answers.length <= 1);
      if (r.answers.length === 1) assertLocalReply(r.answers[0]!, 400, "WEIR_ERR_BAD_REQUEST");
      assert.ok(r.closed, `${JSON.stringify(payload)}: the connection stayed open`);
    }
    assertForwarded(ctx, []);
  });

  Versions(`${listener}: HTTP/2.0 in an HTTP/1 request line is refused (it was proxied)`, async (ctx) => {
    const r = await send(ctx.weirs[listener], `GET / HTTP/2.0\r\n${H}\r\n`);
    assertLocalReply(r.answers[0]!, 400, "WEIR_ERR_BAD_REQUEST");
    assertForwarded(ctx, []);
  });

  Versions(`${listener}: an absolute-form target with an empty host (GET http://:) is 400 (it was proxied)`, async (ctx) => {
    const weir = ctx.weirs[listener];
    for (const [target, host] of [["http://:", ":"], ["http://:80/x", ":80"], ["http:///x", ""], ["http://user@a/x", "user@a"]]) {
      clearSeen(ctx);
      const r = await send(weir, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      assert.is(r.answers.length, 1, target);
      assertLocalReply(r.answers[0]!, 400, "WEIR_ERR_BAD_REQUEST");
      assertForwarded(ctx, []);
    }
  });

  Versions(`${listener}: a Host header that is empty or not a host is 400 (it was proxied)`, async (ctx) => {
    const weir = ctx.weirs[listener];
    for (const host of ["", ":", "a b", "a/b", "a@b", "[::1", "a:8x"]) {
      clearSeen(ctx);
      const r = await send(weir, `GET /h HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      assert.is(r.answers.length, 1, JSON.stringify(host));
      assertLocalReply(r.answers[0]!, 400, "WEIR_ERR_BAD_REQUEST");
      assertForwarded(ctx, []);
    }
  });

  Versions(`${listener}: ordinary Host spellings are still proxied`, async (ctx) => {
    const weir = ctx.weirs[listener];
    for (const host of ["a", "a:80", "A.Example.COM", "127.0.0.1:8080", "[::1]:8080", "xn--bcher-kva.example", "a_b.example", "a.example."]) {
      clearSeen(ctx);
      const r = await send(weir, `GET /h HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
      assert.is(r.answers[0]?.status, 200, `${host}: ${r.answers[0]?.body}`);
      assertForwarded(ctx, ["GET /h"]);
    }
  });
}

Versions.run();

// ---------------------------------------------------------------------------------------------
const Meaning = suite<Ctx>("parser boundary: a request means the same on both listeners");
Meaning.before(setUp);
Meaning.after(tearDown);
Meaning.before.each(clearSeen);

for (const listener of LISTENERS) {
  Meaning(`${listener}: a QUERY request is proxied as QUERY (the lean listener read llhttp's method code as an index into another list: a 502)`, async (ctx) => {
    const r = await send(ctx.weirs[listener], `QUERY /q HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n`);
    assert.is(r.answers[0]?.upSeq, 1, JSON.stringify(r.answers[0]));
    assertForwarded(ctx, ["QUERY /q"]);
  });

  Meaning(`${listener}: PRI (whose llhttp code the lean listener would have read as QUERY) is never proxied`, async (ctx) => {
    for (const payload of [`PRI /p HTTP/1.1\r\n${H}\r\n`, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]) await send(ctx.weirs[listener], payload);
    assertForwarded(ctx, []);
  });

  Meaning(`${listener}: an Expect other than 100-continue gets Weir's JSON 417 (node:http answered a bare 417)`, async (ctx) => {
    const r = await send(ctx.weirs[listener], `POST /e HTTP/1.1\r\n${H}Expect: something-else\r\nContent-Length: 2\r\n\r\nok`);
    assertLocalReply(r.answers[0]!, 417, "WEIR_ERR_EXPECTATION_FAILED");
    assertForwarded(ctx, []);
  });

  Meaning(`${listener}: Transfer_Encoding and Content_Length, which CGI-style servers read as the real headers, are 400 (they were forwarded)`, async (ctx) => {
    for (const field of ["Transfer_Encoding: chunked", "Content_Length: 3", "Transfer--Encoding: chunked", "CONTENT_LENGTH: 3"]) {
      clearSeen(ctx);
      const r = await send(ctx.weirs[listener], `POST /u HTTP/1.1\r\n${H}${field}\r\n\r\n`);
      assertLocalReply(r.answers[0]!, 400, "WEIR_ERR_BAD_REQUEST");
      assertForwarded(ctx, []);
    }
  });

  Meaning(`${listener}: requests read before junk are all answered before the 400 (a request behind a Connection: close one was dropped and answered 400)`, async (ctx) => {
    const r = await send(ctx.weirs[listener], `GET /one HTTP/1.1\r\n${H}\r\nGET /two HTTP/1.1\r\n${H}Connection: close\r\n\r\nGET /three HTTP/1.1\r\n${H}\r\n`);
    assert.equal(r.answers.map((a) => a.upSeq === null ? a.status : "up"), ["up", "up"]);
    assertForwarded(ctx, ["GET /one", "GET /two"]);
    assert.ok(r.closed);
  });
}

Meaning.run();
