/** cors: schema, behaviour in the sandbox (preflight, simple requests, credentials), through Weir. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadPlugin } from "../../core/plugin-host/testing.js";
import { assertNamesKey, builtin, configProblems, startGateway } from "./support.js";

const plugin = builtin("cors");
const APP = "https://app.example.com";

const Schema = suite("cors schema");
Schema("accepts exact origins with credentials, and * without", async () => {
  assert.equal(await configProblems({ use: "cors", config: { origins: [APP], credentials: true, maxAge: 600, methods: ["GET"], headers: ["content-type"] } }), []);
  assert.equal(await configProblems({ use: "cors", config: { origins: ["*"] } }), []);
});
Schema("refuses * with credentials, bad origins, bad maxAge and unknown keys, naming the key", async () => {
  assertNamesKey(await configProblems({ use: "cors", config: { origins: ["*"], credentials: true } }), "config.origins");
  assertNamesKey(await configProblems({ use: "cors", config: { origins: ["app.example.com"] } }), "config.origins[0]");
  assertNamesKey(await configProblems({ use: "cors", config: { origins: [APP + "/path"] } }), "config.origins[0]");
  assertNamesKey(await configProblems({ use: "cors", config: { origins: [APP], maxAge: -1 } }), "config.maxAge");
  assertNamesKey(await configProblems({ use: "cors", config: {} }), "config.origins");
  assertNamesKey(await configProblems({ use: "cors", config: { origins: [APP], allowCredentials: true } }), "config.allowCredentials");
});
Schema.run();

const Behaviour = suite("cors in the sandbox");
const preflightHeaders = (origin: string) => ({ origin, "access-control-request-method": "PUT", "access-control-request-headers": "content-type, x-trace" });
Behaviour("answers an allowed preflight itself with 204 and the allow headers", async () => {
  const p = await loadPlugin(plugin, { config: { origins: [APP], credentials: true, maxAge: 600 } });
  try {
    const r = await p.request({ method: "OPTIONS", headers: preflightHeaders(APP) });
    assert.is(r.responded?.status, 204);
    assert.is(r.responded?.body, "");
    const h = r.responded!.headers;
    assert.is(h["access-control-allow-origin"], APP);
    assert.is(h["access-control-allow-methods"], "GET, HEAD, PUT, PATCH, POST, DELETE");
    assert.is(h["access-control-allow-headers"], "content-type, x-trace");
    assert.is(h["access-control-allow-credentials"], "true");
    assert.is(h["access-control-max-age"], "600");
    assert.is(h["vary"], "Origin");
  } finally { await p.close(); }
});
Behaviour("answers a preflight from an unlisted origin with 204 and no CORS headers", async () => {
  const p = await loadPlugin(plugin, { config: { origins: [APP], credentials: true } });
  try {
    const r = await p.request({ method: "OPTIONS", headers: preflightHeaders("https://evil.example") });
    assert.is(r.responded?.status, 204);
    assert.is(r.responded?.headers["access-control-allow-origin"], undefined);
    assert.is(r.responded?.headers["vary"], "Origin");
  } finally { await p.close(); }
});
Behaviour("lets a plain OPTIONS (no preflight headers) go upstream", async () => {
  const p = await loadPlugin(plugin, { config: { origins: ["*"] } });
  try {
    assert.is((await p.request({ method: "OPTIONS", headers: { origin: APP } })).responded, null);
    assert.is((await p.request({ method: "OPTIONS" })).responded, null);
  } finally { await p.close(); }
});
Behaviour("adds the origin, credentials and Vary to responses, keeping the upstream's Vary", async () => {
  const p = await loadPlugin(plugin, { config: { origins: [APP], credentials: true, exposeHeaders: ["x-total"] } });
  try {
    const r = await p.response({ headers: { origin: APP }, responseHeaders: { vary: "Accept-Encoding" } });
    assert.is(r.response.headers["access-control-allow-origin"], APP);
    assert.is(r.response.headers["access-control-allow-credentials"], "true");
    assert.is(r.response.headers["access-control-expose-headers"], "x-total");
    assert.is(r.response.headers["vary"], "Accept-Encoding, Origin");
    const other = await p.response({ headers: { origin: "https://evil.example" } });
    assert.is(other.response.headers["access-control-allow-origin"], undefined, "never reflects an unlisted origin");
    assert.is(other.response.headers["vary"], "Origin");
  } finally { await p.close(); }
});
Behaviour("answers * (never the echoed origin) for a wildcard list", async () => {
  const p = await loadPlugin(plugin, { config: { origins: ["*"] } });
  try {
    const r = await p.response({ headers: { origin: "https://anyone.example" } });
    assert.is(r.response.headers["access-control-allow-origin"], "*");
    assert.is(r.response.headers["access-control-allow-credentials"], undefined);
  } finally { await p.close(); }
});
Behaviour.run();

const Integration = suite("cors through Weir");
Integration("a preflight is answered 204 by Weir and never reaches the upstream; a GET gets the CORS headers", async () => {
  const g = await startGateway([{ use: "cors", config: { origins: [APP], credentials: true, maxAge: 60 } }]);
  try {
    const pre = await g.get("/api", preflightHeaders(APP), "OPTIONS");
    assert.is(pre.status, 204);
    assert.is(pre.headers["access-control-allow-origin"], APP);
    assert.is(pre.headers["vary"], "Origin");
    assert.is(g.upstream.seen.length, 0);
    const get = await g.get("/api", { origin: APP });
    assert.is(get.status, 200);
    assert.is(get.headers["access-control-allow-origin"], APP);
    assert.is(get.headers["access-control-allow-credentials"], "true");
    assert.is(get.headers["vary"], "Origin");
  } finally { await g.close(); }
});
Integration.run();
