/**
 * 10,000 random plugin results (test/support/plugin-result-cases.ts: headers over all 256 byte
 * values and beyond, huge strings, statuses in and out of range and of every type, ctx.respond
 * bodies of every JS type, paths, result shapes the SDK never makes) go through the real chain,
 * real isolates and real sockets, on the lean listener and on node:http. Whatever a result holds:
 * the process stays up, every bad value is the plugin's failure (a 500 naming the plugin, or
 * skipped with onError: open, and a log line naming the plugin, its version, the hook and the
 * field), and every good value reaches the wire as it was given.
 *
 * Reproduce a failure with its seed: WEIR_FUZZ_SEED=<seed> (the default is fixed).
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { pino } from "pino";
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Agent, request } from "undici";
import { fixturePath } from "../support/fixtures.js";
import { bodyOf, caseOf, statusOf, type PluginResultCase } from "../support/plugin-result-cases.js";
import { startWeir, type TestWeir } from "../support/weir.js";

const SEED = Number(process.env.WEIR_FUZZ_SEED ?? 0x5eed2024);
const CASES = 10_000;
const ENTRIES = 4; // routes /f0../f3; odd ones onError: open
const DEADLINE_MS = 120_000;
const plugin = fixturePath("plugins", "fuzz-results.ts");

// ---- the oracle: the rules as the docs state them, written here again ---------------------

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const PATH = /^\/[\x21-\x22\x24-\x3e\x40-\x7e]*$/;
const MAX_HEADER_BYTES = 65536;
/** Request headers whose plugin value Weir drops (hop-by-hop, its own). */
const DROPPED_REQUEST = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id", "traceparent", "content-length"]);
const DROPPED_RESPONSE = new Set(["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect", "content-length", "x-request-id"]);
const trimOws = (v: string) => v.replace(/^[ \t]+|[ \t]+$/g, "");
const finalStatus = (v: unknown) => { const n = Number(v); return Number.isInteger(n) && n >= 200 && n <= 599; };
const goodHeader = (name: string, value: string) => TOKEN.test(name) && FIELD_VALUE.test(value) && name.length + value.length + 4 < MAX_HEADER_BYTES - 4096;
const goodHeaderList = (l: unknown) => Array.isArray(l) && l.length % 2 === 0 && l.every((x, i) => typeof x === "string" && (i % 2 === 1 ? FIELD_VALUE.test(x) : TOKEN.test(x)));

function bodyText(body: unknown): string | null {
  try {
    const s = body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body);
    return typeof s === "string" ? s : null;
  } catch { return null; }
}

type Verdict = { good: true } | { good: false; field: RegExp };

function verdict(c: PluginResultCase): Verdict {
  const bad = (field: RegExp): Verdict => ({ good: false, field });
  switch (c.kind) {
    case "request-header": return goodHeader(c.name!, c.value!) ? { good: true } : bad(/request header/);
    case "early-response-header": case "response-header": return goodHeader(c.name!, c.value!) ? { good: true } : bad(/response header/);
    case "respond-header": return goodHeader(c.name!, c.value!) ? { good: true } : bad(/ctx\.respond header/);
    case "respond-status": return finalStatus(statusOf(c.status!)) ? { good: true } : bad(/ctx\.respond an invalid status/);
    case "response-status": return finalStatus(statusOf(c.status!)) ? { good: true } : bad(/ctx\.response\.status/);
    case "respond-body": return bodyText(bodyOf(c.body!, c.bodySeed!)) !== null ? { good: true } : bad(/ctx\.respond: the body/);
    case "path": return PATH.test(c.path!) ? { good: true } : bad(/ctx\.request\.path/);
    case "raw-headers": return goodHeaderList(c.raw) ? { good: true } : bad(c.hook === "onRequest" ? /request header/ : /response header/);
    case "raw-respond": {
      const r = c.raw as { s?: unknown; b?: unknown; h?: unknown } | null;
      const ok = typeof r === "object" && r !== null && !Array.isArray(r) && typeof r.s === "number" && finalStatus(r.s) &&
        (r.b === undefined || typeof r.b === "string") && (r.h === undefined || goodHeaderList(r.h));
      return ok ? { good: true } : bad(/ctx\.respond/);
    }
    case "raw-status": return bad(/ctx\.response\.status/);
    case "raw-path": return bad(/ctx\.request\.path/);
  }
}

// ---- the parts: a recording upstream, two Weirs, a client ----------------------------------

interface Seen { url: string; headers: Record<string, string | string[] | undefined> }
interface Failure { plugin: string; version: string; hook: string; code: string; error: string }

let upstream: Server;
const seen = new Map<string, Seen>();
const failures = new Map<string, Failure>();
const client = new Agent({ maxHeaderSize: 8 * 1024 * 1024, connections: 16, keepAliveTimeout: 10_000 });
const weirs: { name: string; weir: TestWeir }[] = [];

async function startParts(): Promise<void> {
  // Headers as large as a plugin may set (the default 16 KiB would refuse them upstream).
  upstream = createServer({ maxHeaderSize: 2 * 1024 * 1024 }, (req, res) => {
    seen.set(String(req.headers["x-request-id"]), { url: req.url!, headers: req.headers });
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "application/json", "content-length": 12 }).end('{"up":"yes"}'));
  });
  upstream.listen(0, "127.0.0.1");
  await once(upstream, "listening");
  const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const sink = new Writable({
    write(chunk, _e, cb) {
      for (const l of String(chunk).split("\n")) {
        if (!l) continue;
        const j = JSON.parse(l) as Record<string, string>;
        if (j.msg === "plugin failed" && j.requestId) failures.set(j.requestId, { plugin: j.plugin!, version: j.version!, hook: j.hook!, code: j.code!, error: j.error! });
      }
      cb();
    },
  });
  const config = {
    routes: Array.from({ length: ENTRIES }, (_, i) => ({
      name: `f${i}`, match: { path: `/f${i}` }, upstream: origin,
      plugins: [{ use: plugin, config: { seed: SEED }, onError: (i % 2 === 1 ? "open" : "closed") as "open" | "closed", limits: { memoryMb: 256, timeoutMs: 5000, asyncTimeoutMs: 20_000 } }],
    })),
  };
  for (const name of ["lean", "node:http"]) {
    if (name === "node:http") process.env.WEIR_LEAN_LISTENER = "0";
    try {
      weirs.push({ name, weir: await startWeir(config, { logger: pino({ level: "warn" }, sink) }) });
    } finally {
      delete process.env.WEIR_LEAN_LISTENER;
    }
  }
}

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }

async function send(weir: TestWeir, entry: number, index: number): Promise<Answer> {
  const res = await request(`${weir.url}/f${entry}`, { dispatcher: client, headers: { "x-case": String(index) } });
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(c as Buffer);
  return { status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) };
}

const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(", ") : v);
/** A header as a parser reads it: RFC 9110 §5.5 has it strip leading and trailing OWS (not every parser strips both). */
const read = (v: string | string[] | undefined) => { const s = one(v); return s === undefined ? undefined : trimOws(s); };

// ---- the checks -------------------------------------------------------------------------------

interface Tally { good: number; bad: number; resets: number; byKind: Record<string, { good: number; bad: number }> }

function checkBad(c: PluginResultCase, v: { field: RegExp }, a: Answer, open: boolean, where: string): void {
  const id = one(a.headers["x-request-id"])!;
  if (open) {
    assert.is(a.status, 200, `${where}: with onError: open the plugin is skipped`);
    assert.is(a.body.toString(), '{"up":"yes"}', `${where}: the upstream's answer, untouched`);
  } else {
    assert.is(a.status, 500, `${where}: ${a.body.toString().slice(0, 300)}`);
    const body = JSON.parse(a.body.toString()) as { error: string; code: string; requestId: string };
    assert.is(body.requestId, id, where);
    assert.ok(body.error.startsWith(`the plugin "fuzz-results" failed in ${c.hook}`), `${where}: ${body.error}`);
  }
  const f = failures.get(id);
  assert.ok(f, `${where}: no "plugin failed" log line for request ${id}`);
  assert.is(f!.plugin, "fuzz-results", where);
  assert.is(f!.version, "1.0.0", where);
  assert.is(f!.hook, c.hook, where);
  assert.ok(["WEIR_ERR_PLUGIN_INVALID_HEADER", "WEIR_ERR_PLUGIN_INVALID_RESULT", "WEIR_ERR_PLUGIN_FAILED"].includes(f!.code), `${where}: ${f!.code}`);
  assert.match(f!.error, v.field, `${where}: the message names the field: ${f!.error.slice(0, 300)}`);
  if (f!.code !== "WEIR_ERR_PLUGIN_FAILED") assert.ok(f!.error.startsWith('plugin "fuzz-results" '), `${where}: the message names the plugin: ${f!.error.slice(0, 200)}`);
}

function checkGood(c: PluginResultCase, a: Answer, where: string): void {
  const id = one(a.headers["x-request-id"])!;
  assert.is(failures.get(id), undefined, `${where}: a good result was refused: ${failures.get(id)?.error.slice(0, 300)}`);
  const up = seen.get(id);
  const lower = c.name?.toLowerCase() ?? "";
  const value = c.value === undefined ? "" : trimOws(c.value);
  switch (c.kind) {
    case "request-header":
      assert.is(a.status, 200, where);
      assert.ok(up, `${where}: the upstream saw the request`);
      if (lower === "host") assert.is(read(up!.headers.host), value, where);
      else if (!DROPPED_REQUEST.has(lower)) assert.is(read(up!.headers[lower]), value, where);
      break;
    case "early-response-header": case "response-header": case "respond-header":
      assert.is(a.status, 200, where);
      if (lower === "x-request-id") assert.ok(typeof a.headers["x-request-id"] === "string", `${where}: one X-Request-Id, Weir's`);
      else if (!DROPPED_RESPONSE.has(lower)) assert.is(read(a.headers[lower]), value, where);
      if (c.kind === "respond-header") assert.is(a.body.toString(), "ok", where);
      break;
    case "respond-status": case "response-status":
      assert.is(a.status, Number(statusOf(c.status!)), where);
      break;
    case "respond-body": {
      assert.is(a.status, 200, where);
      const expected = Buffer.from(bodyText(bodyOf(c.body!, c.bodySeed!))!);
      assert.ok(a.body.equals(expected), `${where}: body of ${a.body.length} bytes, expected ${expected.length}`);
      break;
    }
    case "path":
      assert.is(a.status, 200, where);
      assert.is(up?.url, c.path, where);
      break;
    case "raw-headers": case "raw-respond":
      assert.is(a.status, 200, where);
      break;
    default:
      assert.unreachable(`${where}: ${c.kind} has no good value`);
  }
}

/**
 * One entry's cases, one request at a time. An entry that failed 5 times in a row is degraded
 * (skipped for a cooldown), which would hide what the next cases do: before a fifth bad case in
 * a row the entry gets one request that changes nothing (x-case: -1), not counted as a case.
 */
async function runEntry(weir: TestWeir, listener: string, entry: number, indexes: number[], tally: Tally, deadline: number): Promise<void> {
  let streak = 0;
  for (const index of indexes) {
    if (Date.now() > deadline) throw new Error(`the fuzz ran past ${DEADLINE_MS} ms`);
    const c = caseOf(SEED, index);
    const v = verdict(c);
    if (!v.good && streak === 4) {
      const reset = await send(weir, entry, -1);
      assert.is(reset.status, 200, `${listener} reset`);
      tally.resets++;
      streak = 0;
    }
    const where = `${listener} seed ${SEED} case ${index} (${c.kind} in ${c.hook}${c.name !== undefined ? `, name ${JSON.stringify(c.name.slice(0, 40))}` : ""}${c.value !== undefined ? `, value ${JSON.stringify(c.value.slice(0, 40))} (${c.value.length})` : ""})`;
    let a: Answer;
    try { a = await send(weir, entry, index); } catch (err) { throw new Error(`${where}: the client could not read the answer: ${(err as Error).message}`); }
    const k = (tally.byKind[c.kind] ??= { good: 0, bad: 0 });
    if (v.good) { checkGood(c, a, where); tally.good++; k.good++; streak = 0; }
    else { checkBad(c, v, a, entry % 2 === 1, where); tally.bad++; k.bad++; streak++; }
  }
}

const Fuzz = suite("plugin results, fuzzed");

Fuzz.before(startParts);
Fuzz.after(async () => {
  for (const { weir } of weirs) await weir.stop();
  await client.close();
  await new Promise<void>((r) => { upstream.close(() => r()); upstream.closeAllConnections(); });
});

Fuzz(`${CASES} random results through the real chain on both listeners: the process stays up, bad values are named failures, good ones reach the wire`, async () => {
  const deadline = Date.now() + DEADLINE_MS;
  const started = performance.now();
  const tallies = await Promise.all(weirs.map(async ({ name, weir }) => {
    const tally: Tally = { good: 0, bad: 0, resets: 0, byKind: {} };
    await Promise.all(Array.from({ length: ENTRIES }, (_, e) => {
      const indexes: number[] = [];
      for (let i = e; i < CASES; i += ENTRIES) indexes.push(i);
      return runEntry(weir, name, e, indexes, tally, deadline);
    }));
    // Still serving, and the plugin was never degraded by the fuzz.
    assert.is((await request(`${weir.admin}/health`)).statusCode, 200);
    const plugins = (await (await request(`${weir.admin}/plugins`)).body.json()) as { state: string }[];
    assert.ok(plugins.every((p) => p.state === "active"), JSON.stringify(plugins.map((p) => p.state)));
    return { name, tally };
  }));
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  for (const { name, tally } of tallies) {
    assert.is(tally.good + tally.bad, CASES);
    console.log(`fuzz ${name}: seed ${SEED}, ${CASES} cases in ${seconds} s: ${tally.good} good, ${tally.bad} bad, ${tally.resets} resets; ` +
      Object.entries(tally.byKind).map(([k, n]) => `${k} ${n.good}/${n.bad}`).join(", "));
  }
});

Fuzz.run();
