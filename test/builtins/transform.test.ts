/** transform: schema, behaviour in the sandbox (templates, params), and through Weir. */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { loadPlugin } from "../../core/plugin-host/testing.js";
import { assertNamesKey, builtin, configProblems, startGateway } from "./support.js";

const plugin = builtin("transform");

const Schema = suite("transform schema");
Schema("accepts every documented key", async () => {
  assert.equal(await configProblems({ use: "transform", config: {
    request: { setHeaders: { "x-consumer": "${consumer}" }, removeHeaders: ["cookie"], rewritePath: "/v2/users/${params.id}" },
    response: { setHeaders: { "x-route": "${route}" }, removeHeaders: ["server"] },
  } }), []);
});
Schema("refuses unknown keys, unknown template variables, bad header names and relative paths, naming the key", async () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ request: { addHeaders: {} } }, "config.request.addHeaders"],
    [{ requests: {} }, "config.requests"],
    [{ request: { setHeaders: { "x-a": "${user}" } } }, "config.request.setHeaders.x-a"],
    [{ request: { setHeaders: { "bad name": "v" } } }, "config.request.setHeaders"],
    [{ request: { removeHeaders: ["x y"] } }, "config.request.removeHeaders[0]"],
    [{ request: { rewritePath: "v2/${params.id}" } }, "config.request.rewritePath"],
    [{ response: { rewritePath: "/x" } }, "config.response.rewritePath"],
  ];
  for (const [config, want] of cases) assertNamesKey(await configProblems({ use: "transform", config }), want);
});
Schema.run();

const Behaviour = suite("transform in the sandbox");
Behaviour("sets and removes request headers with templates, and rewrites the path with route params", async () => {
  const p = await loadPlugin(plugin, { config: { request: {
    setHeaders: { "x-consumer": "${consumer}", "x-trace": "${route}/${requestId}", "x-static": "v1", "x-client": "${clientIp}" },
    removeHeaders: ["Cookie", "x-debug"],
    rewritePath: "/v2/users/${params.id}/profile",
  } } });
  try {
    const r = await p.request({
      path: "/users/42", params: { id: "42" }, consumer: "alice", route: "users", requestId: "rid-1", clientIp: "10.1.2.3",
      headers: { cookie: "a=b", "X-Debug": "1", accept: "*/*" },
    });
    assert.is(r.error, null);
    assert.is(r.request.path, "/v2/users/42/profile");
    assert.is(r.request.headers["x-consumer"], "alice");
    assert.is(r.request.headers["x-trace"], "users/rid-1");
    assert.is(r.request.headers["x-static"], "v1");
    assert.is(r.request.headers["x-client"], "10.1.2.3");
    assert.is(r.request.headers["cookie"], undefined);
    assert.is(r.request.headers["x-debug"], undefined);
    assert.is(r.request.headers["accept"], "*/*");
  } finally { await p.close(); }
});
Behaviour("leaves out a header whose value expands to nothing (anonymous consumer)", async () => {
  const p = await loadPlugin(plugin, { config: { request: { setHeaders: { "x-consumer": "${consumer}" } } } });
  try {
    const r = await p.request({ headers: { "x-consumer": "forged" } });
    assert.is(r.request.headers["x-consumer"], "forged", "not overwritten with an empty value");
    const p2 = await loadPlugin(plugin, { config: { request: { removeHeaders: ["x-consumer"], setHeaders: { "x-consumer": "${consumer}" } } } });
    try {
      const r2 = await p2.request({ headers: { "x-consumer": "forged" } });
      assert.is(r2.request.headers["x-consumer"], undefined, "removed first, then not set");
    } finally { await p2.close(); }
  } finally { await p.close(); }
});
Behaviour("reads the ctx. spellings (which survive a config file's environment expansion) like the short ones", async () => {
  const p = await loadPlugin(plugin, { config: { request: { setHeaders: { "x-a": "${ctx.consumer}|${ctx.route}|${ctx.requestId}|${ctx.clientIp}", "x-b": "${consumer}|${route}|${requestId}|${clientIp}" } } } });
  try {
    const r = await p.request({ consumer: "c", route: "r", requestId: "i", clientIp: "::1" });
    assert.is(r.request.headers["x-a"], "c|r|i|::1");
    assert.is(r.request.headers["x-b"], "c|r|i|::1");
  } finally { await p.close(); }
});
Behaviour("changes response headers (queued in onRequest, applied when the response comes)", async () => {
  const p = await loadPlugin(plugin, { config: { response: { setHeaders: { "x-served-for": "${consumer}@${route}" }, removeHeaders: ["server", "x-powered-by"] } } });
  try {
    assert.equal(p.manifest.hooks, ["onRequest"]);
    const r = await p.request({ consumer: "bob", route: "api", responseHeaders: { server: "nginx", "x-powered-by": "php", "content-type": "text/plain" } });
    assert.is(r.response.headers["x-served-for"], "bob@api");
    assert.is(r.response.headers["server"], undefined);
    assert.is(r.response.headers["x-powered-by"], undefined);
    assert.is(r.response.headers["content-type"], "text/plain");
  } finally { await p.close(); }
});
Behaviour.run();

const Integration = suite("transform through Weir");
Integration("the upstream sees the rewritten path and headers; the client sees the response changes", async () => {
  const g = await startGateway([
    { use: "key-auth", config: { keys: { k1: "alice" } } },
    { use: "transform", config: {
      // In a config file ${NAME} is environment expansion: the ctx. spellings pass through it.
      request: { setHeaders: { "x-consumer": "${ctx.consumer}", "x-request": "${ctx.requestId}" }, removeHeaders: ["cookie"], rewritePath: "/internal/orders/${params.id}" },
      response: { setHeaders: { "x-route": "${ctx.route}" }, removeHeaders: ["x-upstream-secret"] },
    } },
  ], {
    path: "/orders/:id",
    handler: (req, res) => { res.writeHead(200, { "x-upstream-secret": "s", "content-type": "text/plain" }); res.end(req.url); },
  });
  try {
    const r = await g.get("/orders/7?expand=1", { "x-api-key": "k1", cookie: "session=1", "x-request-id": "abc-123" });
    assert.is(r.status, 200);
    assert.is(r.body, "/internal/orders/7?expand=1");
    const seen = g.upstream.seen[0]!;
    assert.is(seen.headers["x-consumer"], "alice");
    assert.is(seen.headers["x-request"], "abc-123");
    assert.is(seen.headers["cookie"], undefined);
    assert.is(r.headers["x-route"], "r");
    assert.is(r.headers["x-upstream-secret"], undefined);
  } finally { await g.close(); }
});
Integration.run();
