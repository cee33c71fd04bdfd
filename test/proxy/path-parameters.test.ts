/**
 * Path parameters (`;...` in a segment) cannot route a request around a protected route: servers
 * such as Tomcat drop them, so `/admin;x` is their `/admin`. Routes match the path without them;
 * the upstream receives the path as the client wrote it.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "undici";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";
import { originalPrefixLength, withoutPathParameters } from "../../core/router/path-parameters.js";

const Params = suite<{ admin: TestUpstream; open: TestUpstream; weir: TestWeir }>("path parameters");

Params.before(async (ctx) => {
  ctx.admin = await startUpstream();
  ctx.open = await startUpstream();
  ctx.weir = await startWeir({
    routes: [
      { name: "admin", match: { path: "/admin" }, upstream: ctx.admin.url, plugins: [{ use: "key-auth", config: { keys: { k: "root" } } }] },
      { name: "api", match: { path: "/api" }, upstream: ctx.admin.url, stripPrefix: true },
      { name: "public", match: { path: "/" }, upstream: ctx.open.url },
    ],
  });
});
Params.after(async (ctx) => { await ctx.weir.stop(); await ctx.admin.close(); await ctx.open.close(); });

const get = async (url: string, headers: Record<string, string> = {}) => {
  const res = await request(url, { headers });
  await res.body.text();
  return res.statusCode;
};

Params("a protected route is not missed by adding path parameters", async ({ weir, admin, open }) => {
  for (const p of ["/admin;x=1", "/admin;jsessionid=abc/secret", "/admin/;x/secret", "/admin;/secret"]) {
    assert.is(await get(weir.url + p), 401, p);
  }
  assert.is(admin.seen.length, 0);
  assert.is(open.seen.length, 0, "nothing went to the catch-all route");
});

Params("with credentials the upstream gets the path as the client wrote it", async ({ weir, admin }) => {
  assert.is(await get(`${weir.url}/admin;jsessionid=abc/secret?q=1`, { "x-api-key": "k" }), 200);
  assert.is(admin.seen.at(-1)!.url, "/admin;jsessionid=abc/secret?q=1");
});

Params("stripPrefix cuts the same segments from the original path", async ({ weir, admin }) => {
  assert.is(await get(`${weir.url}/api;v=2/users;x/7`), 200);
  assert.is(admin.seen.at(-1)!.url, "/users;x/7");
});

Params("parameters are dropped per segment, and a matched prefix maps back to the original path", () => {
  assert.is(withoutPathParameters("/a;b=1/c;d/e"), "/a/c/e");
  assert.is(originalPrefixLength("/api;v=2/users", "/api/users", 4), 8);
  assert.is(originalPrefixLength("/api;v=2", "/api", 4), 8);
});

Params.run();
