/** The example plugins, tested as a plugin author would: weir/sdk/testing, in the real sandbox. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { fileURLToPath } from "node:url";
import { loadPlugin } from "../../core/plugin-host/testing.js";

const file = (name: string) => fileURLToPath(new URL(`../../../examples/plugins/${name}`, import.meta.url));

const AddHeader = suite("example add-header");
AddHeader("sets the configured header on the request and the response", async () => {
  const p = await loadPlugin(file("add-header.ts"), { config: { name: "x-served-by", value: "weir" } });
  try {
    const req = await p.request({ headers: { accept: "*/*" } });
    assert.is(req.request.headers["x-served-by"], "weir");
    assert.is(req.request.headers["accept"], "*/*");
    const res = await p.response({ status: 200, responseHeaders: { "content-type": "text/plain" } });
    assert.is(res.response.headers["x-served-by"], "weir");
  } finally { await p.close(); }
});
AddHeader("refuses a config without a value", async () => {
  try {
    await loadPlugin(file("add-header.ts"), { config: { name: "x" } });
    assert.unreachable("should have thrown");
  } catch (err) {
    assert.match(String(err), /value/);
  }
});
AddHeader.run();

const Auth = suite("example bearer-auth");
Auth("answers 401 with WWW-Authenticate when the token is missing", async () => {
  const p = await loadPlugin(file("bearer-auth.ts"), { config: { tokens: { s3cret: "alice" } } });
  try {
    const r = await p.request({ path: "/orders" });
    assert.is(r.responded?.status, 401);
    assert.equal(r.responded?.json, { error: "missing bearer token" });
    assert.is(r.responded?.headers["www-authenticate"], 'Bearer realm="weir"');
  } finally { await p.close(); }
});
Auth("sets the consumer and strips the token when it is valid", async () => {
  const p = await loadPlugin(file("bearer-auth.ts"), { config: { tokens: { s3cret: "alice" } } });
  try {
    const r = await p.request({ headers: { authorization: "Bearer s3cret" } });
    assert.is(r.responded, null);
    assert.is(r.consumer, "alice");
    assert.is(r.request.headers["authorization"], undefined);
    assert.is(r.request.headers["x-consumer"], "alice");
  } finally { await p.close(); }
});
Auth.run();

const Counter = suite("example visit-counter");
Counter("counts each client's visits through the store", async () => {
  const p = await loadPlugin(file("visit-counter.ts"), { config: { windowMs: 60000 } });
  try {
    const first = await p.request({ clientIp: "10.0.0.1" });
    const second = await p.request({ clientIp: "10.0.0.1" });
    const other = await p.request({ clientIp: "10.0.0.2" });
    assert.is(first.request.headers["x-visits"], "1");
    assert.is(second.request.headers["x-visits"], "2");
    assert.is(other.request.headers["x-visits"], "1");
    assert.is(second.vars.visits, 2);
    const res = await p.response({ vars: second.vars });
    assert.is(res.response.headers["x-visits"], "2");
  } finally { await p.close(); }
});
Counter("fails with a clear error when the store is not granted", async () => {
  const p = await loadPlugin(file("visit-counter.ts"), { permissions: {} });
  try {
    const r = await p.request();
    assert.match(r.error ?? "", /permission/);
  } finally { await p.close(); }
});
Counter.run();
