/**
 * X-Forwarded-* and trustedProxies: a client's own X-Forwarded-For, -Proto and -Host are believed
 * only when the peer is a trusted proxy; otherwise Weir replaces them with what it saw itself, so a
 * client cannot pose as another address.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "undici";
import { rawRequest } from "../support/raw-http.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";

interface Ctx { up: TestUpstream; untrusted: TestWeir; trusted: TestWeir; otherRange: TestWeir }

const Forwarded = suite<Ctx>("x-forwarded-for and trustedProxies");

Forwarded.before(async (ctx) => {
  ctx.up = await startUpstream();
  const routes = [{ match: { path: "/" }, upstream: ctx.up.url }];
  ctx.untrusted = await startWeir({ routes });
  ctx.trusted = await startWeir({ trustedProxies: ["127.0.0.1/32"], routes });
  ctx.otherRange = await startWeir({ trustedProxies: ["10.0.0.0/8", "::1/128"], routes });
});
Forwarded.after(async (ctx) => {
  await ctx.untrusted.stop();
  await ctx.trusted.stop();
  await ctx.otherRange.stop();
  await ctx.up.close();
});

const spoofed = { "x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https", "x-forwarded-host": "spoofed.example" };

async function seenHeaders(up: TestUpstream, weir: TestWeir, headers: Record<string, string>) {
  const res = await request(`${weir.url}/who`, { headers });
  assert.is(res.statusCode, 200);
  await res.body.text();
  return up.seen.at(-1)!.headers;
}

Forwarded("without trustedProxies a client's X-Forwarded-For is replaced by its address", async ({ up, untrusted }) => {
  const h = await seenHeaders(up, untrusted, spoofed);
  assert.is(h["x-forwarded-for"], "127.0.0.1");
  assert.is(h["x-forwarded-proto"], "http");
  assert.is(h["x-forwarded-host"], `127.0.0.1:${untrusted.port}`);
});

Forwarded("without an incoming X-Forwarded-For the peer address is sent", async ({ up, trusted }) => {
  const h = await seenHeaders(up, trusted, {});
  assert.is(h["x-forwarded-for"], "127.0.0.1");
  assert.is(h["x-forwarded-proto"], "http");
});

Forwarded("from a trusted proxy the X-Forwarded-For chain is kept and the peer appended", async ({ up, trusted }) => {
  const h = await seenHeaders(up, trusted, { "x-forwarded-for": "203.0.113.7, 198.51.100.2" });
  assert.is(h["x-forwarded-for"], "203.0.113.7, 198.51.100.2, 127.0.0.1");
});

Forwarded("from a trusted proxy X-Forwarded-Proto and X-Forwarded-Host are kept", async ({ up, trusted }) => {
  const h = await seenHeaders(up, trusted, spoofed);
  assert.is(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
  assert.is(h["x-forwarded-proto"], "https");
  assert.is(h["x-forwarded-host"], "spoofed.example");
});

Forwarded("several X-Forwarded-For headers from a trusted proxy are joined in order", async ({ up, trusted }) => {
  const res = await rawRequest(trusted.port, `GET /who HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.2\r\nConnection: close\r\n\r\n`);
  assert.is(res.status, 200);
  assert.is(up.seen.at(-1)!.headers["x-forwarded-for"], "203.0.113.7, 198.51.100.2, 127.0.0.1");
});

Forwarded("several X-Forwarded-For headers from an untrusted peer are all dropped", async ({ up, untrusted }) => {
  const res = await rawRequest(untrusted.port, `GET /who HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 198.51.100.2\r\nConnection: close\r\n\r\n`);
  assert.is(res.status, 200);
  assert.is(up.seen.at(-1)!.headers["x-forwarded-for"], "127.0.0.1");
});

Forwarded("trusting other ranges does not trust the peer", async ({ up, otherRange }) => {
  const h = await seenHeaders(up, otherRange, spoofed);
  assert.is(h["x-forwarded-for"], "127.0.0.1");
  assert.is(h["x-forwarded-proto"], "http");
  assert.is(h["x-forwarded-host"], `127.0.0.1:${otherRange.port}`);
});

Forwarded("the upstream sees exactly one X-Forwarded-For header", async ({ up, trusted }) => {
  await seenHeaders(up, trusted, { "x-forwarded-for": "203.0.113.7" });
  const raw = up.seen.at(-1)!.rawHeaders;
  const names = raw.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
  assert.is(names.filter((n) => n === "x-forwarded-for").length, 1);
  assert.is(names.filter((n) => n === "x-forwarded-proto").length, 1);
  assert.is(names.filter((n) => n === "x-forwarded-host").length, 1);
  assert.is(names.filter((n) => n === "host").length, 1);
});

Forwarded.run();
