/**
 * The lean listener must not change what a request means: the same bytes sent to a Weir with the
 * fast path and to one without it (WEIR_LEAN_LISTENER=0, node:http only) get the same status and
 * body, and the upstream sees the same request. Each case goes over a fresh raw connection in
 * one write, the way the fast path takes requests, including the odd ones a client could send to
 * find a difference between two parsers (request smuggling lives in such differences).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { openRaw, type FramedResponse } from "../support/raw-connection.js";
import { startUpstream, type SeenRequest, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";

interface Ctx { up: TestUpstream; lean: TestWeir; plain: TestWeir }

const Same = suite<Ctx>("lean listener and node:http agree");

Same.before(async (ctx) => {
  ctx.up = await startUpstream();
  const config = { routes: [{ name: "all", match: { path: "/" }, upstream: ctx.up.url }] };
  ctx.lean = await startWeir(config);
  process.env.WEIR_LEAN_LISTENER = "0";
  try {
    ctx.plain = await startWeir(config);
  } finally {
    delete process.env.WEIR_LEAN_LISTENER;
  }
  assert.ok(ctx.lean.rt.leanListenerStats() !== null && ctx.plain.rt.leanListenerStats() === null);
});
Same.after(async (ctx) => { await ctx.lean.stop(); await ctx.plain.stop(); await ctx.up.close(); });

/** What may differ between two runs of the same request: ids, dates, the port in Host. */
function comparable(r: FramedResponse | string): unknown {
  if (typeof r === "string") return r;
  let body: unknown = r.body;
  try {
    const j = JSON.parse(r.body) as Record<string, unknown>;
    delete j.requestId;
    if (j.headers) j.headers = stripVolatile(j.headers as Record<string, unknown>);
    body = j;
  } catch { /* not JSON */ }
  return { status: r.status, body, contentType: r.headers["content-type"], connection: r.headers["connection"] };
}

function stripVolatile(h: Record<string, unknown>): Record<string, unknown> {
  const out = { ...h };
  for (const k of ["x-request-id", "traceparent", "host", "x-forwarded-host"]) delete out[k];
  return out;
}

function seenShape(s: SeenRequest | undefined): unknown {
  return s === undefined ? null : { method: s.method, url: s.url, headers: stripVolatile(s.headers as Record<string, unknown>), body: s.body.toString() };
}

/** Sends `payload` in one write to `weir`; the answer (or "closed" / "no answer"), and what reached the upstream. */
async function exchange(weir: TestWeir, up: TestUpstream, payload: string, bodiless: boolean): Promise<{ answer: unknown; seen: unknown }> {
  const before = up.seen.length;
  const c = await openRaw(weir.port);
  c.send(payload);
  let answer: unknown;
  try {
    answer = comparable(await c.next({ bodiless, timeoutMs: 2000 }));
  } catch (err) {
    answer = /closed/.test((err as Error).message) ? "closed" : "no answer";
  }
  c.close();
  await new Promise((r) => setTimeout(r, 20)); // a request refused late must have had its chance to arrive
  return { answer, seen: up.seen.length > before ? seenShape(up.seen.at(-1)) : null };
}

const CASES: [string, string][] = [
  ["a plain GET", "GET /a?b=1 HTTP/1.1\r\nHost: h\r\n\r\n"],
  ["HEAD", "HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n"],
  ["a method llhttp knows but few use", "PURGE /cache HTTP/1.1\r\nHost: h\r\n\r\n"],
  ["OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"],
  ["lower-case method", "get / HTTP/1.1\r\nHost: h\r\n\r\n"],
  ["bare LF line ends", "GET /lf HTTP/1.1\nHost: h\n\n"],
  ["a bare LF inside the head", "GET /lf2 HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n"],
  ["obs-fold", "GET /fold HTTP/1.1\r\nHost: h\r\nX-Long: a\r\n  b\r\n\r\n"],
  ["space before the colon", "GET /sp HTTP/1.1\r\nHost : h\r\n\r\n"],
  ["a header name with a bad character", "GET /bad HTTP/1.1\r\nHost: h\r\nX(A): 1\r\n\r\n"],
  ["NUL in a header value", "GET /nul HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n"],
  ["two Host headers", "GET /hh HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n"],
  ["no Host", "GET /nohost HTTP/1.1\r\n\r\n"],
  ["absolute-form with a matching Host", "GET http://h/abs HTTP/1.1\r\nHost: h\r\n\r\n"],
  ["absolute-form with another Host", "GET http://evil/abs HTTP/1.1\r\nHost: h\r\n\r\n"],
  ["dot-segments and an encoded slash", "GET /a/../b/%2e%2e/c HTTP/1.1\r\nHost: h\r\n\r\n"],
  ["%2F in the path", "GET /a%2Fb HTTP/1.1\r\nHost: h\r\n\r\n"],
  ["Content-Length: 0 on a GET", "GET /cl0 HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"],
  ["a POST with its body", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"],
  ["a body longer than its Content-Length", "POST /p2 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nhello"],
  ["two Content-Lengths that agree", "POST /p3 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello"],
  ["two Content-Lengths that differ", "POST /p4 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 4\r\n\r\nhello"],
  ["Content-Length with a sign", "POST /p5 HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\nhello"],
  ["Content-Length and Transfer-Encoding", "POST /p6 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"],
  ["a chunked body", "POST /p7 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"],
  ["Transfer-Encoding other than chunked", "POST /p8 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"],
  ["a body on a GET", "GET /gb HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"],
  ["TRACE", "TRACE / HTTP/1.1\r\nHost: h\r\n\r\n"],
  ["HTTP/1.0 with keep-alive", "GET /ten HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n"],
  ["HTTP/2 preface-like version", "GET / HTTP/2.0\r\nHost: h\r\n\r\n"],
  ["Connection: close", "GET /close HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"],
  ["hop-by-hop named in Connection", "GET /hop HTTP/1.1\r\nHost: h\r\nConnection: X-Secret\r\nX-Secret: 1\r\nX-Kept: 2\r\n\r\n"],
  ["repeated ordinary headers", "GET /rep HTTP/1.1\r\nHost: h\r\nAccept: a\r\nAccept: b\r\nCookie: c=1\r\nCookie: d=2\r\n\r\n"],
  ["X-Forwarded-For from an untrusted client", "GET /xff HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n"],
  ["a client's request id", "GET /rid HTTP/1.1\r\nHost: h\r\nX-Request-Id: abc-123\r\n\r\n"],
  ["garbage", "HELLO\r\n\r\n"],
];

for (const [name, payload] of CASES) {
  Same(`${name}: same answer, same request upstream`, async ({ up, lean, plain }) => {
    const bodiless = payload.startsWith("HEAD");
    const viaLean = await exchange(lean, up, payload, bodiless);
    const viaNode = await exchange(plain, up, payload, bodiless);
    assert.equal(viaLean, viaNode);
  });
}

Same.run();
