import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "undici";
import { rawRequest } from "../support/raw-http.js";
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

Forwarding.run();
