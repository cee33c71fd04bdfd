/**
 * ctx.jwt.verify from a third-party plugin (permission `jwt: true`): a good HS256 token verifies;
 * `alg: none`, an expired token and one without `exp` are refused with a clear reason the plugin
 * can act on; without the permission the call fails naming it.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { SignJWT } from "jose";
import { request } from "undici";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";
import { pluginFixture } from "./support.js";

const SECRET = "a-test-secret-of-at-least-32-bytes!!";
const key = new TextEncoder().encode(SECRET);
const now = () => Math.floor(Date.now() / 1000);
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

const hs256 = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).sign(key);

const Jwt = suite<{ up: TestUpstream; weir: TestWeir }>("ctx.jwt.verify in a third-party plugin");

Jwt.before(async (ctx) => {
  ctx.up = await startUpstream();
  ctx.weir = await startWeir({
    routes: [
      { match: { path: "/jwt" }, upstream: ctx.up.url, plugins: [{ use: pluginFixture("jwt-checker.ts"), config: { secret: SECRET }, permissions: { jwt: true } }] },
      { match: { path: "/undeclared" }, upstream: ctx.up.url, plugins: [{ use: pluginFixture("jwt-undeclared.ts"), permissions: { jwt: true } }] },
    ],
  });
});
Jwt.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

async function call(weir: TestWeir, token: string): Promise<{ status: number; body: { refused?: string; code?: string | null } }> {
  const res = await request(`${weir.url}/jwt/x`, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.body.text();
  return { status: res.statusCode, body: res.statusCode === 401 ? JSON.parse(text) : {} };
}

Jwt("an HS256 token with exp verifies and its claims reach the plugin", async ({ weir, up }) => {
  const r = await call(weir, await hs256({ sub: "alice", exp: now() + 60 }));
  assert.is(r.status, 200);
  assert.is(up.seen.at(-1)!.headers["x-sub"], "alice");
});

Jwt("an alg: none token is refused", async ({ weir, up }) => {
  const before = up.seen.length;
  const r = await call(weir, `${b64({ alg: "none", typ: "JWT" })}.${b64({ sub: "mallory", exp: now() + 60 })}.`);
  assert.is(r.status, 401);
  assert.is(r.body.refused, '"alg" (Algorithm) Header Parameter value not allowed');
  assert.is(r.body.code, "ERR_JOSE_ALG_NOT_ALLOWED");
  assert.is(up.seen.length, before);
});

Jwt("an expired token is refused, saying so", async ({ weir }) => {
  const r = await call(weir, await hs256({ sub: "alice", exp: now() - 60 }));
  assert.is(r.status, 401);
  assert.match(r.body.refused ?? "", /"exp" claim timestamp check failed/);
  assert.is(r.body.code, "ERR_JWT_EXPIRED");
});

Jwt("a token without exp is refused, naming the missing claim", async ({ weir }) => {
  const r = await call(weir, await hs256({ sub: "alice" }));
  assert.is(r.status, 401);
  assert.match(r.body.refused ?? "", /missing required "exp" claim/);
});

Jwt("a token signed with another secret is refused", async ({ weir }) => {
  const other = await new SignJWT({ sub: "alice", exp: now() + 60 }).setProtectedHeader({ alg: "HS256" }).sign(new TextEncoder().encode("another-secret-of-at-least-32-bytes!"));
  const r = await call(weir, other);
  assert.is(r.status, 401);
  assert.match(r.body.refused ?? "", /signature verification failed/);
});

Jwt("without the jwt permission the call fails naming the permission", async ({ weir, up }) => {
  const before = up.seen.length;
  const res = await request(`${weir.url}/undeclared/x`);
  const body = (await res.body.json()) as { refused: string | null };
  assert.is(res.statusCode, 403);
  assert.match(body.refused ?? "", /ctx\.jwt needs a permission this plugin was not granted; declare it in definePlugin\(\{ permissions \}\)/);
  assert.is(up.seen.length, before);
});

Jwt("a plugin that declares jwt is refused at start when its entry does not grant it", async ({ up }) => {
  try {
    const w = await startWeir({ routes: [{ match: { path: "/" }, upstream: up.url, plugins: [{ use: pluginFixture("jwt-checker.ts"), config: { secret: SECRET } }] }] });
    await w.stop();
    assert.unreachable("Weir must refuse to start");
  } catch (err) {
    assert.match((err as Error).message, /routes\[0\]\.plugins\[0\]: the plugin "jwt-checker" asks for permissions this entry does not grant; add permissions: \{ jwt: true \}/);
  }
});

Jwt.run();
