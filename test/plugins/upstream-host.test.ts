/**
 * The Host an upstream receives follows the route's rule whatever a plugin changes: the target's
 * host:port by default (`preserveHost: false`), the client's with `preserveHost: true`, and
 * another value only when a plugin sets `host` to it.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { request } from "undici";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, tempDir, type TestWeir } from "../support/weir.js";

const dir = tempDir("weir-host-");
const plugin = (name: string, body: string): string => {
  const file = join(dir, `${name}.ts`);
  writeFileSync(file, `import { definePlugin } from "weir/sdk";\nexport default definePlugin({ name: "${name}", version: "1.0.0", onRequest(ctx) { ${body} } });\n`);
  return file;
};
const setsHeader = plugin("sets-header", `ctx.request.headers.set("x-added", ctx.request.headers.get("host") ?? "none");`);
const setsHost = plugin("sets-host", `ctx.request.headers.set("host", "backend.internal");`);

const Host = suite<{ up: TestUpstream; weir: TestWeir }>("the upstream Host with plugins on the route");

Host.before(async (ctx) => {
  ctx.up = await startUpstream();
  ctx.weir = await startWeir({
    routes: [
      { name: "default", match: { path: "/default" }, upstream: ctx.up.url, plugins: [{ use: setsHeader }] },
      { name: "preserve", match: { path: "/preserve" }, upstream: ctx.up.url, preserveHost: true, plugins: [{ use: setsHeader }] },
      { name: "explicit", match: { path: "/explicit" }, upstream: ctx.up.url, plugins: [{ use: setsHeader }, { use: setsHost }, { use: setsHeader }] },
      { name: "builtins", match: { path: "/builtins" }, upstream: ctx.up.url, plugins: [{ use: "transform", config: { request: { setHeaders: { "x-t": "1" } } } }] },
    ],
  });
});
Host.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

async function upstreamHost(weir: TestWeir, up: TestUpstream, path: string): Promise<{ host: string; added: string }> {
  const res = await request(weir.url + path, { headers: { host: "public.example.com" } });
  await res.body.dump();
  assert.is(res.statusCode, 200);
  const seen = up.seen.at(-1)!;
  return { host: String(seen.headers.host), added: String(seen.headers["x-added"] ?? "") };
}

Host("a plugin that sets a header leaves the target's Host going upstream (preserveHost: false)", async ({ weir, up }) => {
  const { host, added } = await upstreamHost(weir, up, "/default/x");
  assert.is(host, new URL(up.url).host);
  assert.is(added, "public.example.com", "the plugin saw the client's Host");
});

Host("with preserveHost: true the client's Host goes upstream", async ({ weir, up }) => {
  assert.is((await upstreamHost(weir, up, "/preserve/x")).host, "public.example.com");
});

Host("a plugin that sets host sends that Host upstream, and later plugins see it", async ({ weir, up }) => {
  const { host, added } = await upstreamHost(weir, up, "/explicit/x");
  assert.is(host, "backend.internal");
  assert.is(added, "backend.internal");
});

Host("a built-in that sets request headers leaves the Host alone", async ({ weir, up }) => {
  assert.is((await upstreamHost(weir, up, "/builtins/x")).host, new URL(up.url).host);
});

Host.run();
