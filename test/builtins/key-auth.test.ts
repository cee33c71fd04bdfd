/** key-auth in three layers: its schema, its behaviour in the real sandbox, and through a running Weir. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadPlugin } from "../../core/plugin-host/testing.js";
import { assertNamesKey, builtin, configProblems, startGateway } from "./support.js";

const plugin = builtin("key-auth");
const keys = { "k-alice": "alice", "k-bob": "bob" };

const Schema = suite("key-auth schema");
Schema("accepts keys with the default header", async () => {
  assert.equal(await configProblems({ use: "key-auth", config: { keys } }), []);
});
Schema("refuses a config without keys, naming the key", async () => {
  const p = await configProblems({ use: "key-auth", config: {} });
  assert.ok(p.some((l) => l.startsWith("routes[0].plugins[0].config.keys: ")), p.join("\n"));
});
Schema("refuses an unknown key", async () => {
  const p = await configProblems({ use: "key-auth", config: { keys, hedaer: "x-key" } });
  assertNamesKey(p, "config.hedaer");
});
Schema("refuses a header name that is not a token and a consumer that is not a string", async () => {
  const p = await configProblems({ use: "key-auth", config: { keys: { k: 1 }, header: "x key" } });
  assert.ok(p.some((l) => l.startsWith("routes[0].plugins[0].config.header: ")), p.join("\n"));
  assert.ok(p.some((l) => l.startsWith("routes[0].plugins[0].config.keys.k: ")), p.join("\n"));
});
Schema.run();

const Behaviour = suite("key-auth in the sandbox");
Behaviour("answers 401 JSON when the key is missing", async () => {
  const p = await loadPlugin(plugin, { config: { keys } });
  try {
    const r = await p.request({ path: "/x" });
    assert.is(r.responded?.status, 401);
    assert.match(String((r.responded?.json as { error: string }).error), /missing API key/);
  } finally { await p.close(); }
});
Behaviour("answers 401 JSON for an unknown key, and for inherited property names", async () => {
  const p = await loadPlugin(plugin, { config: { keys } });
  try {
    for (const key of ["nope", "__proto__", "toString", "constructor", ""]) {
      const r = await p.request({ headers: { "x-api-key": key } });
      assert.is(r.responded?.status, 401, key);
      assert.is(r.consumer, null);
    }
  } finally { await p.close(); }
});
Behaviour("sets the consumer and strips the key header", async () => {
  const p = await loadPlugin(plugin, { config: { keys } });
  try {
    const r = await p.request({ headers: { "X-API-Key": "k-bob", accept: "*/*" } });
    assert.is(r.responded, null);
    assert.is(r.consumer, "bob");
    assert.is(r.request.headers["x-api-key"], undefined);
    assert.is(r.request.headers["accept"], "*/*");
  } finally { await p.close(); }
});
Behaviour("reads a configured header and keeps it when keepHeader is true", async () => {
  const p = await loadPlugin(plugin, { config: { keys, header: "Authorization-Key", keepHeader: true } });
  try {
    const r = await p.request({ headers: { "authorization-key": "k-alice" } });
    assert.is(r.consumer, "alice");
    assert.is(r.error, null);
    assert.is(r.request.headers["authorization-key"], "k-alice");
    const missing = await p.request({ headers: { "x-api-key": "k-alice" } });
    assert.is(missing.responded?.status, 401);
  } finally { await p.close(); }
});
Behaviour.run();

const Integration = suite("key-auth through Weir");
Integration("refusals never reach the upstream; a good key does, without the key", async () => {
  const g = await startGateway([{ use: "key-auth", config: { keys } }]);
  try {
    const none = await g.get("/a");
    assert.is(none.status, 401);
    assert.ok(String(none.headers["content-type"]).startsWith("application/json"));
    assert.type(none.json().error, "string");
    const bad = await g.get("/a", { "x-api-key": "wrong" });
    assert.is(bad.status, 401);
    const twice = await g.get("/a", { "x-api-key": ["k-alice", "k-alice"] });
    assert.is(twice.status, 401);
    assert.is(g.upstream.seen.length, 0);
    const ok = await g.get("/a", { "x-api-key": "k-alice" });
    assert.is(ok.status, 200);
    assert.is(g.upstream.seen.length, 1);
    assert.is(g.upstream.seen[0]!.headers["x-api-key"], undefined);
  } finally { await g.close(); }
});
Integration("auth bypass by path spelling never reaches the protected upstream", async () => {
  const g = await startGateway([{ use: "key-auth", config: { keys } }], { path: "/admin" });
  try {
    for (const p of ["/admin", "/public/../admin", "/public/%2e%2e/admin", "//admin", "/%61dmin", "/admin/", "/ADMIN/../admin"]) {
      const r = await g.get(p);
      assert.ok(r.status === 401 || r.status === 404 || r.status === 400, `${p} -> ${r.status}`);
    }
    assert.is(g.upstream.seen.length, 0);
  } finally { await g.close(); }
});
Integration.run();
