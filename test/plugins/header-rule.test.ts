/**
 * One rule for every header a plugin writes (RFC 9110 §5.1 and §5.5: a name is a token; a value
 * holds visible characters, obs-text, spaces and tabs, nothing else), on both listeners: a bad
 * header set through ctx.respond, a request header, a response header set in onRequest or in
 * onResponse is the plugin's failure (500 per its onError, with a message that names the plugin
 * and the header, a stable code and a log line), never a crash of the listener and never a 502
 * blamed on the upstream. Fixture: test/fixtures/plugins/header-values.ts.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Agent, request } from "undici";
import { fixturePath } from "../support/fixtures.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";
import { loadPlugin } from "../../core/plugin-host/testing.js";

const plugin = fixturePath("plugins", "header-values.ts");

interface Ctx { up: TestUpstream; weir: TestWeir; lines: Record<string, unknown>[] }
interface Answer { status: number; body: string; headers: Record<string, unknown>; json: { error?: string; code?: string; requestId?: string } | null }

async function get(url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(url, { headers });
  const body = await res.body.text();
  let json: Answer["json"] = null;
  try { json = JSON.parse(body) as Answer["json"]; } catch { /* not JSON */ }
  return { status: res.statusCode, body, headers: res.headers, json };
}

/** `\uXXXX` escapes of every character, for the fixture's x-value / x-name headers. */
const escaped = (s: string) => [...s].map((c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0")).join("");

function listenerSuite(listener: "lean" | "node:http") {
  const S = suite<Ctx>(`the header rule on the ${listener} listener`);

  S.before(async (ctx) => {
    ctx.up = await startUpstream();
    ctx.lines = [];
    const sink = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split("\n")) if (l) ctx.lines.push(JSON.parse(l) as Record<string, unknown>); cb(); } });
    if (listener === "node:http") process.env.WEIR_LEAN_LISTENER = "0";
    try {
      ctx.weir = await startWeir({
        routes: [
          { name: "closed", match: { path: "/closed" }, upstream: ctx.up.url, plugins: [{ use: plugin }] },
          { name: "open", match: { path: "/open" }, upstream: ctx.up.url, plugins: [{ use: plugin, onError: "open" }] },
        ],
      }, { logger: pino({ level: "warn" }, sink) });
    } finally {
      delete process.env.WEIR_LEAN_LISTENER;
    }
    assert.is(ctx.weir.rt.leanListenerStats() === null, listener === "node:http");
  });
  S.after(async (ctx) => { await ctx.weir.stop(); await ctx.up.close(); });

  /** A 500 of the plugin's: JSON, the request id, the plugin and the header named, the code. */
  function assertHeaderFailure(a: Answer, hook: string, field: RegExp): void {
    assert.is(a.status, 500, a.body);
    assert.ok(a.json, a.body);
    assert.is(a.json!.code, "WEIR_ERR_PLUGIN_INVALID_HEADER", a.body);
    assert.is(a.json!.requestId, a.headers["x-request-id"]);
    assert.match(a.json!.error ?? "", new RegExp(`the plugin "header-values" failed in ${hook}`), a.body);
    assert.match(a.json!.error ?? "", field, a.body);
  }

  S("a control character in a ctx.respond header is the plugin's 500, and the listener goes on", async ({ weir, up }) => {
    const seen = up.seen.length;
    const a = await get(`${weir.url}/closed/respond`);
    assertHeaderFailure(a, "onRequest", /ctx\.respond header "x-a" to a value with a control character \(0x01\)/);
    assert.is(a.headers["x-a"], undefined);
    assert.is(up.seen.length, seen);
    assert.is((await get(`${weir.url}/closed/fine`)).status, 200);
  });

  S("a control character in a request header is the plugin's 500, not a 502, and nothing reaches the upstream", async ({ weir, up }) => {
    const seen = up.seen.length;
    const a = await get(`${weir.url}/closed/request-header`);
    assertHeaderFailure(a, "onRequest", /set request header "x-a" to a value with a control character \(0x01\)/);
    assert.is(up.seen.length, seen);
  });

  S("a control character in a response header set in onRequest is the plugin's 500", async ({ weir }) => {
    const a = await get(`${weir.url}/closed/early-response-header`);
    assertHeaderFailure(a, "onRequest", /set response header "x-a" to a value with a control character \(0x01\)/);
    assert.is(a.headers["x-a"], undefined);
  });

  S("a control character in a response header set in onResponse is the plugin's 500, not a 502", async ({ weir }) => {
    const a = await get(`${weir.url}/closed/response-header`);
    assertHeaderFailure(a, "onResponse", /set response header "x-a" to a value with a control character \(0x01\)/);
    assert.is(a.headers["x-a"], undefined);
  });

  S("with onError: open the plugin is skipped and the answer is the upstream's, without the header", async ({ weir, up }) => {
    for (const action of ["respond", "request-header", "early-response-header", "response-header"]) {
      const a = await get(`${weir.url}/open/${action}`);
      assert.is(a.status, 200, `${action}: ${a.body}`);
      assert.is(a.headers["x-a"], undefined, action);
      assert.is(up.seen.at(-1)!.url, `/open/${action}`);
      assert.is(up.seen.at(-1)!.headers["x-a"], undefined, action);
    }
  });

  S("DEL, NUL, CR, LF and characters beyond Latin-1 are refused, each named", async ({ weir }) => {
    const cases: [string, RegExp][] = [
      ["a\u007fb", /a control character \(0x7f\)/],
      ["a\u0000b", /a control character \(0x00\)/],
      ["a\rb", /a control character \(0x0d\)/],
      ["a\nb", /a control character \(0x0a\)/],
      ["a\u20acb", /a character outside Latin-1 \(U\+20AC\)/],
    ];
    for (const [value, why] of cases) {
      for (const action of ["respond", "request-header", "response-header"]) {
        const a = await get(`${weir.url}/closed/${action}`, { "x-value": escaped(value) });
        assertHeaderFailure(a, action === "response-header" ? "onResponse" : "onRequest", why);
      }
    }
  });

  S("a header name that is not a token is refused, named with its bad character", async ({ weir }) => {
    for (const [name, why] of [["x a", /invalid name "x a" \(' ' \(0x20\) is not allowed in a token\)/], ["x\u0001a", /invalid name "x\\u0001a"/], ["", /invalid name "" \(empty\)/]] as [string, RegExp][]) {
      for (const action of ["respond", "request-header", "early-response-header", "response-header"]) {
        const a = await get(`${weir.url}/closed/${action}`, { "x-name": escaped(name) });
        assertHeaderFailure(a, action === "response-header" ? "onResponse" : "onRequest", why);
      }
    }
  });

  S("tabs, spaces and obs-text pass through to the client and the upstream unchanged", async ({ weir, up }) => {
    const value = "a\tb c\u00e9\u00ff";
    const r = await get(`${weir.url}/closed/respond`, { "x-value": escaped(value) });
    assert.is(r.status, 200, r.body);
    assert.is(Buffer.from(String(r.headers["x-a"]), "latin1").toString("latin1"), value);
    const q = await get(`${weir.url}/closed/request-header`, { "x-value": escaped(value) });
    assert.is(q.status, 200, q.body);
    assert.is(up.seen.at(-1)!.headers["x-a"], value);
    const s = await get(`${weir.url}/closed/response-header`, { "x-value": escaped(value) });
    assert.is(s.status, 200, s.body);
    assert.is(s.headers["x-a"], value);
  });

  S("a refused header is logged with the plugin, its version, the hook, the code and the request id", async ({ weir, lines }) => {
    const a = await get(`${weir.url}/closed/response-header`);
    assert.is(a.status, 500);
    const line = lines.find((l) => l.requestId === a.json!.requestId && l.msg === "plugin failed");
    assert.ok(line, JSON.stringify(lines.slice(-3)));
    assert.is(line!.plugin, "header-values");
    assert.is(line!.version, "1.2.3");
    assert.is(line!.hook, "onResponse");
    assert.is(line!.code, "WEIR_ERR_PLUGIN_INVALID_HEADER");
    assert.match(String(line!.error), /plugin "header-values" set response header "x-a" to a value with a control character \(0x01\)/);
  });

  S("a refused header counts as a failure of the plugin in /plugins", async ({ weir }) => {
    await get(`${weir.url}/closed/request-header`);
    const plugins = (await (await request(`${weir.admin}/plugins`)).body.json()) as { at: string; failures: number; errors: { hook: string; message: string; code?: string }[] }[];
    const closed = plugins.find((p) => p.at === "routes[0].plugins[0]")!;
    assert.ok(closed.failures > 0);
    assert.ok(closed.errors.some((e) => e.code === "WEIR_ERR_PLUGIN_INVALID_HEADER" && /request header "x-a"/.test(e.message)), JSON.stringify(closed.errors));
  });

  S("a Content-Length a plugin sets stays Weir's: the request and the response keep their own framing", async ({ weir, up }) => {
    const q = await get(`${weir.url}/closed/request-content-length`);
    assert.is(q.status, 200, q.body);
    assert.is(up.seen.at(-1)!.headers["content-length"], undefined);
    const s = await get(`${weir.url}/closed/response-content-length`);
    assert.is(s.status, 200, s.body);
    assert.is(Number(s.headers["content-length"]), Buffer.byteLength(s.body));
    assert.ok(JSON.parse(s.body));
  });

  S("a body ctx.respond cannot send fails the plugin naming the body", async ({ weir, lines }) => {
    for (const action of ["respond-bigint", "respond-circular"]) {
      const a = await get(`${weir.url}/closed/${action}`);
      assert.is(a.status, 500, a.body);
      const line = lines.find((l) => l.requestId === a.json!.requestId && l.msg === "plugin failed");
      assert.match(String(line?.error), /ctx\.respond: the body \((bigint|object)\) cannot be sent/, action);
    }
  });

  S("a 1xx is not a final status: ctx.respond(101) and ctx.response.status = 199 fail the plugin", async ({ weir }) => {
    const r = await get(`${weir.url}/closed/respond-101`);
    assert.is(r.status, 500, r.body);
    assert.is(r.json!.code, "WEIR_ERR_PLUGIN_INVALID_RESULT");
    assert.match(r.json!.error ?? "", /ctx\.respond an invalid status 101 \(a final status, an integer 200-599\)/);
    const s = await get(`${weir.url}/closed/status-199`);
    assert.is(s.status, 500, s.body);
    assert.match(s.json!.error ?? "", /set ctx\.response\.status to an invalid status 199/);
  });

  S("a status set to 204 or 304 sends no body and no Content-Length of the upstream's, and the connection is reused", async ({ weir }) => {
    const agent = new Agent({ connections: 1 });
    try {
      for (const [action, status] of [["status-204", 204], ["status-304", 304], ["respond-204", 204], ["fine", 200]] as [string, number][]) {
        const res = await request(`${weir.url}/closed/${action}`, { dispatcher: agent });
        const body = await res.body.text();
        assert.is(res.statusCode, status, `${action}: ${body}`);
        if (status !== 200) {
          assert.is(body, "", action);
          assert.is(res.headers["content-length"], undefined, action);
        }
      }
    } finally { await agent.close(); }
  });

  S("X-Request-Id and traceparent stay Weir's whatever a plugin sets", async ({ weir, up }) => {
    const a = await get(`${weir.url}/closed/response-header`, { "x-name": escaped("x-request-id"), "x-value": "mine" });
    assert.is(a.status, 200, a.body);
    assert.is(typeof a.headers["x-request-id"], "string");
    assert.not.equal(a.headers["x-request-id"], "mine");
    const b = await get(`${weir.url}/closed/respond`, { "x-name": escaped("X-Request-Id"), "x-value": "mine" });
    assert.is(typeof b.headers["x-request-id"], "string");
    assert.not.equal(b.headers["x-request-id"], "mine");
    const q = await get(`${weir.url}/closed/request-header`, { "x-name": escaped("traceparent"), "x-value": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" });
    assert.is(q.status, 200, q.body);
    const tp = up.seen.at(-1)!.headers.traceparent;
    assert.is(typeof tp, "string", "one traceparent upstream");
    assert.ok(!String(tp).includes(","), String(tp));
  });

  S("a path with a control character, a space or a non-ASCII character is the plugin's 500, not a 502", async ({ weir, up }) => {
    const seen = up.seen.length;
    for (const [value, shown] of [["\u0001", "\\u0001"], [" x", " x"], ["\u00e9", "\u00e9"]] as [string, string][]) {
      const a = await get(`${weir.url}/closed/path`, { "x-value": escaped(value) });
      assert.is(a.status, 500, a.body);
      assert.is(a.json!.code, "WEIR_ERR_PLUGIN_INVALID_RESULT");
      assert.ok(a.json!.error!.includes(`set ctx.request.path to an invalid path "/p${shown}"`), a.body);
    }
    assert.is(up.seen.length, seen);
    const ok = await get(`${weir.url}/closed/path`, { "x-value": "%C3%A9" });
    assert.is(ok.status, 200, ok.body);
    assert.is(up.seen.at(-1)!.url, "/p%C3%A9");
  });

  return S;
}

listenerSuite("lean").run();
listenerSuite("node:http").run();

const Harness = suite("the header rule in weir/sdk/testing");

Harness("loadPlugin reports a bad header as the error Weir would give", async () => {
  const p = await loadPlugin(plugin);
  try {
    const r = await p.request({ path: "/respond" });
    assert.match(r.error ?? "", /plugin "header-values" set ctx\.respond header "x-a" to a value with a control character \(0x01\)/);
    assert.is(r.responded, null);
    const q = await p.request({ path: "/request-header" });
    assert.match(q.error ?? "", /set request header "x-a"/);
    const ok = await p.request({ path: "/request-header", headers: { "x-value": "fine" } });
    assert.is(ok.error, null);
    assert.is(ok.request.headers["x-a"], "fine");
  } finally { await p.close(); }
});

Harness.run();
