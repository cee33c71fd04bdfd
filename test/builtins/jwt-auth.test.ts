/**
 * jwt-auth against a real JWKS HTTP server started here: schema, every kind of bad token in the
 * sandbox, the JWKS cache (unknown kid, cooldown, stale keys, cold start down or slow), and
 * through Weir (duplicate Authorization, refusals never reaching the upstream).
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { createServer, type Server } from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { exportJWK, exportSPKI, generateKeyPair, jwtVerify, SignJWT, type JWK, type CryptoKey } from "jose";
import { loadPlugin } from "../../core/plugin-host/testing.js";
import { JwksCache } from "../../core/plugin-host/jwks-cache.js";
import { rawRequest } from "../support/raw-http.js";
import { assertNamesKey, builtin, configProblems, startGateway } from "./support.js";

const plugin = builtin("jwt-auth");
const ISS = "https://id.example.com";
const AUD = "orders-api";
const SECRET = "0123456789abcdef0123456789abcdef-secret";

interface Jwks { url: string; server: Server; hits: number; keys: JWK[]; mode: "ok" | "down" | "slow"; close(): Promise<void> }
async function startJwks(keys: JWK[]): Promise<Jwks> {
  const j = { hits: 0, keys, mode: "ok" } as Jwks;
  j.server = createServer((req, res) => {
    j.hits++;
    if (j.mode === "down") { res.writeHead(503); res.end(); return; }
    const send = () => { res.writeHead(200, { "content-type": "application/json" }); res.end(JSON.stringify({ keys: j.keys })); };
    if (j.mode === "slow") setTimeout(send, 5000).unref(); else send();
  });
  j.server.listen(0, "127.0.0.1");
  await once(j.server, "listening");
  j.url = `http://127.0.0.1:${(j.server.address() as AddressInfo).port}/jwks.json`;
  j.close = () => new Promise<void>((r) => { j.server.close(() => r()); j.server.closeAllConnections(); });
  return j;
}

const rsa = await generateKeyPair("RS256", { extractable: true });
const ec = await generateKeyPair("ES256", { extractable: true });
const other = await generateKeyPair("RS256", { extractable: true });
const jwk = async (k: CryptoKey, kid: string, alg: string): Promise<JWK> => ({ ...(await exportJWK(k)), kid, alg, use: "sig" });
const rsaJwk = await jwk(rsa.publicKey, "rsa-1", "RS256");
const ecJwk = await jwk(ec.publicKey, "ec-1", "ES256");
const otherJwk = await jwk(other.publicKey, "rsa-2", "RS256");
const rsaPem = await exportSPKI(rsa.publicKey);

const now = () => Math.floor(Date.now() / 1000);
function sign(claims: Record<string, unknown>, key: CryptoKey | Uint8Array = rsa.privateKey, header: Record<string, unknown> = { alg: "RS256", kid: "rsa-1" }) {
  return new SignJWT(claims).setProtectedHeader(header as { alg: string }).sign(key);
}
const good = (extra: Record<string, unknown> = {}) => sign({ sub: "alice", iss: ISS, aud: AUD, exp: now() + 300, scope: "orders:read", ...extra });
const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

const Schema = suite("jwt-auth schema");
Schema("accepts each key source", async () => {
  assert.equal(await configProblems({ use: "jwt-auth", config: { jwksUri: "https://id.example.com/jwks.json", issuer: ISS, audience: [AUD], algorithms: ["RS256"], clockTolerance: 30 } }), []);
  assert.equal(await configProblems({ use: "jwt-auth", config: { secret: SECRET, clockTolerance: "5s", consumerClaim: "client_id" } }), []);
  assert.equal(await configProblems({ use: "jwt-auth", config: { publicKey: rsaPem } }), []);
});
Schema("refuses none, two key sources, no key source, a short secret and unknown keys", async () => {
  assertNamesKey(await configProblems({ use: "jwt-auth", config: { secret: SECRET, algorithms: ["none"] } }), "config.algorithms[0]");
  assert.ok((await configProblems({ use: "jwt-auth", config: { secret: SECRET, jwksUri: "https://x/jwks" } })).length > 0);
  assert.ok((await configProblems({ use: "jwt-auth", config: {} })).length > 0);
  assertNamesKey(await configProblems({ use: "jwt-auth", config: { secret: "short" } }), "config.secret");
  assertNamesKey(await configProblems({ use: "jwt-auth", config: { secret: SECRET, leeway: 5 } }), "config.leeway");
  assertNamesKey(await configProblems({ use: "jwt-auth", config: { jwksUri: "ftp://x" } }), "config.jwksUri");
});
Schema.run();

const Tokens = suite("jwt-auth in the sandbox, with a real JWKS server");
let jwks: Jwks;
Tokens.before(async () => { jwks = await startJwks([rsaJwk, ecJwk]); });
Tokens.after(async () => { await jwks.close(); });
const load = (extra: Record<string, unknown> = {}) => loadPlugin(plugin, { config: { jwksUri: jwks.url, issuer: ISS, audience: AUD, ...extra } });
function assertInvalid(r: Awaited<ReturnType<Awaited<ReturnType<typeof load>>["request"]>>, what: string) {
  assert.is(r.error, null, what);
  assert.is(r.responded?.status, 401, `${what}: ${JSON.stringify(r.responded?.json)}`);
  assert.match(r.responded!.headers["www-authenticate"] ?? "", /^Bearer error="invalid_token"/, what);
  assert.is((r.responded!.json as { error: string }).error, "invalid token", what);
  assert.is(r.consumer, null, what);
}
Tokens("a good RS256 or ES256 token sets the consumer and puts the claims in ctx.vars", async () => {
  const p = await load();
  try {
    const r = await p.request({ headers: bearer(await good()) });
    assert.is(r.error, null);
    assert.is(r.responded, null);
    assert.is(r.consumer, "alice");
    assert.is((r.vars.claims as { scope: string }).scope, "orders:read");
    const e = await p.request({ headers: bearer(await sign({ sub: "bob", iss: ISS, aud: AUD, exp: now() + 60 }, ec.privateKey, { alg: "ES256", kid: "ec-1" })) });
    assert.is(e.consumer, "bob");
  } finally { await p.close(); }
});
Tokens("refuses every kind of bad token with 401 invalid_token", async () => {
  const p = await load();
  try {
    const payload = { sub: "mallory", iss: ISS, aud: AUD, exp: now() + 300 };
    const cases: [string, string][] = [
      ["alg none", `${b64({ alg: "none", typ: "JWT" })}.${b64(payload)}.`],
      ["HS256 signed with the RSA public key", await sign(payload, new TextEncoder().encode(rsaPem), { alg: "HS256", kid: "rsa-1" })],
      ["expired", await good({ exp: now() - 60 })],
      ["nbf in the future", await good({ nbf: now() + 600 })],
      ["missing exp", await sign({ sub: "mallory", iss: ISS, aud: AUD })],
      ["wrong iss", await good({ iss: "https://evil.example" })],
      ["wrong aud", await good({ aud: "other-api" })],
      ["unknown kid", await sign(payload, other.privateKey, { alg: "RS256", kid: "rsa-2" })],
      ["signed by another key under a known kid", await sign(payload, other.privateKey, { alg: "RS256", kid: "rsa-1" })],
      ["malformed", "not-a-jwt"],
      ["malformed base64", "a.b.c"],
      ["tampered payload", (await good()).replace(/\.[^.]+\./, `.${b64({ ...payload, sub: "admin" })}.`)],
    ];
    for (const [what, token] of cases) assertInvalid(await p.request({ headers: bearer(token) }), what);
    const basic = await p.request({ headers: { authorization: "Basic YWxpY2U6cHc=" } });
    assertInvalid(basic, "Basic scheme");
    const missing = await p.request();
    assert.is(missing.responded?.status, 401);
    assert.is(missing.responded?.headers["www-authenticate"], 'Bearer realm="weir"');
  } finally { await p.close(); }
});
Tokens("accepts an expired token within clockTolerance, and refuses a token without the consumer claim", async () => {
  const p = await load({ clockTolerance: 120, consumerClaim: "client_id" });
  try {
    assert.is((await p.request({ headers: bearer(await good({ exp: now() - 30, client_id: "svc-1" })) })).consumer, "svc-1");
    assertInvalid(await p.request({ headers: bearer(await good()) }), "no client_id claim");
  } finally { await p.close(); }
});
Tokens("an algorithms allow-list refuses other algorithms", async () => {
  const p = await load({ algorithms: ["ES256"] });
  try {
    assertInvalid(await p.request({ headers: bearer(await good()) }), "RS256 outside the allow-list");
  } finally { await p.close(); }
});
Tokens("HS256 with a secret; an RS256 token is refused there", async () => {
  const p = await loadPlugin(plugin, { config: { secret: SECRET } });
  try {
    const hs = await sign({ sub: "carol", exp: now() + 60 }, new TextEncoder().encode(SECRET), { alg: "HS256" });
    assert.is((await p.request({ headers: bearer(hs) })).consumer, "carol");
    assertInvalid(await p.request({ headers: bearer(await good()) }), "RS256 against a secret");
  } finally { await p.close(); }
});
Tokens("a PEM public key; an HS256 token signed with that PEM is refused", async () => {
  const p = await loadPlugin(plugin, { config: { publicKey: rsaPem } });
  try {
    assert.is((await p.request({ headers: bearer(await good()) })).consumer, "alice");
    const confused = await sign({ sub: "mallory", exp: now() + 60 }, new TextEncoder().encode(rsaPem), { alg: "HS256" });
    assertInvalid(await p.request({ headers: bearer(confused) }), "HS256 with the public key as secret");
  } finally { await p.close(); }
});
Tokens.run();

const Cache = suite("jwt-auth JWKS cache");
Cache("an unknown kid refetches the set once (rotation), then not again within the cooldown", async () => {
  const j = await startJwks([rsaJwk]);
  const p = await loadPlugin(plugin, { config: { jwksUri: j.url } });
  try {
    assert.is((await p.request({ headers: bearer(await good()) })).consumer, "alice");
    assert.is(j.hits, 1);
    j.keys = [rsaJwk, otherJwk]; // the provider rotates in a new key
    const rotated = await sign({ sub: "dave", exp: now() + 60 }, other.privateKey, { alg: "RS256", kid: "rsa-2" });
    assert.is((await p.request({ headers: bearer(rotated) })).consumer, "dave");
    assert.is(j.hits, 2);
    for (let i = 0; i < 5; i++) {
      const r = await p.request({ headers: bearer(await sign({ sub: "x", exp: now() + 60 }, rsa.privateKey, { alg: "RS256", kid: `random-${i}` })) });
      assert.is(r.responded?.status, 401);
    }
    assert.is(j.hits, 2, "random kids do not hammer the JWKS server");
  } finally { await p.close(); await j.close(); }
});
Cache("a JWKS down at cold start answers 503 (not a crash, not 401), and fails fast while down", async () => {
  const j = await startJwks([rsaJwk]);
  j.mode = "down";
  const p = await loadPlugin(plugin, { config: { jwksUri: j.url } });
  try {
    const r = await p.request({ headers: bearer(await good()) });
    assert.is(r.error, null);
    assert.is(r.responded?.status, 503);
    assert.match(String((r.responded?.json as { error: string }).error), /key set is unavailable/);
    const t0 = performance.now();
    assert.is((await p.request({ headers: bearer(await good({ jti: "2" })) })).responded?.status, 503);
    assert.ok(performance.now() - t0 < 200, "the second request does not wait on the JWKS again");
    assert.is(j.hits, 1);
    await new Promise((r) => setTimeout(r, 1100));
    j.mode = "ok";
    assert.is((await p.request({ headers: bearer(await good({ jti: "3" })) })).consumer, "alice", "recovers once the JWKS answers");
  } finally { await p.close(); await j.close(); }
});
Cache("a slow JWKS at cold start answers 503 within the fetch timeout", async () => {
  const j = await startJwks([rsaJwk]);
  j.mode = "slow";
  const p = await loadPlugin(plugin, { config: { jwksUri: j.url } });
  try {
    const t0 = performance.now();
    const r = await p.request({ headers: bearer(await good()) });
    const ms = performance.now() - t0;
    assert.is(r.responded?.status, 503);
    assert.ok(ms < 3000, `took ${ms} ms`);
  } finally { await p.close(); await j.close(); }
});
Cache("stale keys stay in use while the JWKS is unreachable", async () => {
  const j = await startJwks([rsaJwk]);
  const cache = new JwksCache(j.url, { cooldownMs: 0, maxAgeMs: 50, timeoutMs: 500, failedRetryMs: 0 });
  try {
    const verify = async () => (await jwtVerify(await good(), cache.resolve, { algorithms: ["RS256"] })).payload.sub;
    assert.is(await verify(), "alice");
    await j.close();
    await new Promise((r) => setTimeout(r, 80)); // older than maxAge; the refresh fails
    assert.is(await verify(), "alice");
    assert.is(await verify(), "alice");
  } finally { await j.close().catch(() => undefined); }
});
Cache.run();

const Integration = suite("jwt-auth through Weir");
Integration("refusals never reach the upstream; two Authorization headers are 400; a good token goes through", async () => {
  const j = await startJwks([rsaJwk]);
  const g = await startGateway([{ use: "jwt-auth", config: { jwksUri: j.url, issuer: ISS } }]);
  try {
    const none = await g.get("/x");
    assert.is(none.status, 401);
    assert.is(none.headers["www-authenticate"], 'Bearer realm="weir"');
    const expired = await g.get("/x", bearer(await good({ exp: now() - 10 })));
    assert.is(expired.status, 401);
    assert.match(String(expired.headers["www-authenticate"]), /^Bearer error="invalid_token"/);
    assert.is(expired.json().error, "invalid token");
    const token = await good();
    const port = g.weir.port;
    const raw = await rawRequest(port, `GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer ${token}\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`);
    assert.is(raw.status, 400, raw.text);
    assert.is(JSON.parse(raw.body).error, "more than one Authorization header");
    assert.is(g.upstream.seen.length, 0);
    const ok = await g.get("/x", bearer(token));
    assert.is(ok.status, 200);
    assert.is(g.upstream.seen.length, 1);
  } finally { await g.close(); await j.close(); }
});
Integration.run();
