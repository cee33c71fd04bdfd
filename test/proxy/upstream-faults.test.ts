/**
 * Upstream faults: whatever an upstream does wrong (refuse, reset, send garbage, stay silent, cut a
 * body short) becomes a 502 or 504 with the JSON body and request id, or, once the status line has
 * gone out, an aborted client connection. Weir itself never goes down: each test ends by proving a
 * healthy route still answers.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "undici";
import { rawRequest } from "../support/raw-http.js";
import { assertLocalReply } from "../support/local-reply.js";
import { closedPort, startRawUpstream, type RawUpstream } from "../support/raw-upstream.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";

const RESPONSE_TIMEOUT_MS = 500;

/** Each fault: a raw upstream that answers every request with `reply`, on the route /NAME. */
const FAULTS: Record<string, (socket: import("node:net").Socket) => void> = {
  reset: (s) => s.resetAndDestroy(),
  "close-silently": (s) => s.end(),
  "garbage-status": (s) => s.end("HTTP/1.1 abc\r\n\r\n"),
  "status-99": (s) => s.end("HTTP/1.1 99 Too Low\r\nContent-Length: 0\r\n\r\n"),
  "status-1000": (s) => s.end("HTTP/1.1 1000 Too High\r\nContent-Length: 0\r\n\r\n"),
  "not-http": (s) => s.end("SSH-2.0-OpenSSH_9.6\r\n\r\n"),
  "invalid-header": (s) => s.end("HTTP/1.1 200 OK\r\nBad Header: x\r\nContent-Length: 2\r\n\r\nok"),
  "nul-in-header": (s) => s.end("HTTP/1.1 200 OK\r\nX-Nul: a\x00b\r\nContent-Length: 2\r\n\r\nok"),
  "bad-content-length": (s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: twelve\r\n\r\nok"),
  "cl-and-te": (s) => s.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
  "unasked-101": (s) => s.end("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
  silent: () => undefined,
  "stall-mid-body": (s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + "x".repeat(100)),
  "cut-length": (s) => { s.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + "x".repeat(100)); setTimeout(() => s.destroy(), 50); },
  "cut-chunked": (s) => { s.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n" + "x".repeat(100) + "\r\n"); setTimeout(() => s.destroy(), 50); },
};

interface Ctx { ok: TestUpstream; raw: Map<string, RawUpstream>; refusedPort: number; weir: TestWeir }

async function get(url: string) {
  const res = await request(url);
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
}

/** The process is still up and serving: a healthy route answers 200. */
async function assertStillServing(weir: TestWeir): Promise<void> {
  const res = await get(`${weir.url}/ok/after`);
  assert.is(res.status, 200, "a healthy route stopped answering after the fault");
}

const Faults = suite<Ctx>("upstream faults");

Faults.before(async (ctx) => {
  ctx.ok = await startUpstream();
  ctx.raw = new Map();
  for (const [name, reply] of Object.entries(FAULTS)) ctx.raw.set(name, await startRawUpstream((socket) => reply(socket)));
  ctx.refusedPort = await closedPort();
  ctx.weir = await startWeir({
    upstreams: {
      refused: { targets: [`http://127.0.0.1:${ctx.refusedPort}`] },
      ...Object.fromEntries([...ctx.raw].map(([name, up]) => [name, { targets: [up.url], timeouts: { response: RESPONSE_TIMEOUT_MS } }])),
    },
    routes: [
      { match: { path: "/ok" }, upstream: ctx.ok.url },
      { match: { path: "/refused" }, upstream: "refused" },
      ...[...ctx.raw.keys()].map((name) => ({ match: { path: `/${name}` }, upstream: name })),
    ],
  });
});
Faults.after(async (ctx) => {
  await ctx.weir.stop();
  await ctx.ok.close();
  for (const up of ctx.raw.values()) await up.close();
});

Faults("a refused connection is 502 with the JSON body", async ({ weir }) => {
  const res = await get(`${weir.url}/refused`);
  assertLocalReply(res, 502, "WEIR_ERR_UPSTREAM_UNREACHABLE");
  await assertStillServing(weir);
});

Faults("an upstream that resets the socket before answering is 502", async ({ weir, raw }) => {
  const res = await get(`${weir.url}/reset`);
  assertLocalReply(res, 502, "WEIR_ERR_UPSTREAM_RESET");
  assert.ok(raw.get("reset")!.heads.length >= 1, "the request never reached the resetting upstream");
  await assertStillServing(weir);
});

Faults("an upstream that closes without a word is 502", async ({ weir }) => {
  const res = await get(`${weir.url}/close-silently`);
  assertLocalReply(res, 502);
  await assertStillServing(weir);
});

for (const name of ["garbage-status", "status-99", "status-1000", "not-http", "invalid-header", "nul-in-header", "bad-content-length", "cl-and-te", "unasked-101"]) {
  Faults(`a malformed response (${name}) is 502 and Weir keeps serving`, async ({ weir }) => {
    const res = await get(`${weir.url}/${name}`);
    assertLocalReply(res, 502);
    await assertStillServing(weir);
  });
}

Faults("an upstream that accepts and never answers is 504 after timeouts.response", async ({ weir }) => {
  const started = Date.now();
  const res = await get(`${weir.url}/silent`);
  const elapsed = Date.now() - started;
  assertLocalReply(res, 504, "WEIR_ERR_UPSTREAM_TIMEOUT");
  assert.ok(elapsed >= RESPONSE_TIMEOUT_MS - 50, `504 came after only ${elapsed} ms`);
  assert.ok(elapsed < RESPONSE_TIMEOUT_MS + 2500, `504 came after ${elapsed} ms`);
  await assertStillServing(weir);
});

Faults("an upstream that stalls mid-body is cut off after timeouts.response and the client sees an abort", async ({ weir }) => {
  const started = Date.now();
  const res = await request(`${weir.url}/stall-mid-body`);
  assert.is(res.statusCode, 200);
  try {
    await res.body.text();
    assert.unreachable("the stalled body was read as complete");
  } catch (err) {
    assert.not.instance(err, assert.Assertion);
  }
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= RESPONSE_TIMEOUT_MS - 50 && elapsed < RESPONSE_TIMEOUT_MS + 2500, `the client was cut after ${elapsed} ms`);
  await assertStillServing(weir);
});

Faults("a fault answer keeps the client's X-Request-Id", async ({ weir }) => {
  const res = await request(`${weir.url}/refused`, { headers: { "x-request-id": "client-chose-this" } });
  const body = assertLocalReply({ status: res.statusCode, headers: res.headers, body: await res.body.text() }, 502);
  assert.is(body.requestId, "client-chose-this");
});

Faults("a Content-Length body cut off after the headers aborts the client connection", async ({ weir }) => {
  const res = await request(`${weir.url}/cut-length`);
  assert.is(res.statusCode, 200);
  try {
    await res.body.text();
    assert.unreachable("the truncated body was read as complete");
  } catch (err) {
    assert.instance(err, Error);
    assert.not.instance(err, assert.Assertion);
  }
  await assertStillServing(weir);
});

Faults("a chunked body cut off after the headers ends without the last chunk", async ({ weir }) => {
  // With chunked framing a clean end would be indistinguishable from a complete body: the
  // connection must be cut before the terminating 0-size chunk.
  const res = await rawRequest(weir.port, `GET /cut-chunked HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`, { timeoutMs: 5000 });
  assert.is(res.status, 200);
  assert.ok(res.closed, "the connection to the client was left open");
  assert.match(res.body, /x{100}/);
  assert.not.match(res.body, /\r\n0\r\n\r\n$/, "Weir ended the chunked body cleanly");

  const viaUndici = await request(`${weir.url}/cut-chunked`);
  try {
    await viaUndici.body.text();
    assert.unreachable("the truncated body was read as complete");
  } catch (err) {
    assert.not.instance(err, assert.Assertion);
  }
  await assertStillServing(weir);
});

Faults("many faults in a row leave Weir serving", async ({ weir }) => {
  const names = ["reset", "garbage-status", "invalid-header", "refused", "unasked-101"];
  const answers = await Promise.all(Array.from({ length: 25 }, (_, i) => get(`${weir.url}/${names[i % names.length]}`)));
  for (const a of answers) assertLocalReply(a, 502);
  await assertStillServing(weir);
});

Faults.run();
