/**
 * The access log: one JSON line per request with the fields an operator searches by, and W3C
 * traceparent propagation (kept when valid, created when absent or invalid) whose trace id is the
 * one in the log line.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { startUpstream } from "../support/upstream.js";
import { rawRequest } from "../support/raw-http.js";
import { startWeir } from "../support/weir.js";
import type { WeirConfig } from "../../core/config/schema.js";
import { LineSink, OPS_PROBE, until } from "./support.js";

const config = (upstream: string, extra: Partial<WeirConfig> = {}): WeirConfig => ({
  upstreams: { api: { targets: [upstream] } },
  routes: [{ name: "users", match: { path: "/users" }, upstream: "api", plugins: [{ use: OPS_PROBE }] }],
  ...extra,
});

const AccessLog = suite("access log");

AccessLog("each request writes one JSON line with route, target, status, durations, client, consumer and ids", async () => {
  const up = await startUpstream();
  const sink = new LineSink();
  const weir = await startWeir(config(up.url), { accessLog: sink });
  try {
    const res = await fetch(`${weir.url}/users/7?x=1`, { headers: { "x-user": "alice", "x-request-id": "req-abc" } });
    const body = await res.text();
    await fetch(`${weir.url}/nowhere`).then((r) => r.arrayBuffer());
    await until(() => sink.lines.length >= 2, 3000, "two access lines");
    const [line, refused] = sink.json();
    assert.is(line!.requestId, "req-abc");
    assert.is(line!.method, "GET");
    assert.is(line!.path, "/users/7?x=1");
    assert.is(line!.status, 200);
    assert.is(line!.route, "users");
    assert.is(line!.upstream, "api");
    assert.is(line!.target, up.url);
    assert.is(line!.clientIp, "127.0.0.1");
    assert.is(line!.consumer, "alice");
    assert.ok((line!.bytesSent as number) >= body.length, `bytesSent ${line!.bytesSent} covers the body (${body.length})`);
    for (const k of ["durationMs", "upstreamMs", "pluginsMs"]) assert.type(line![k], "number", k);
    assert.ok((line!.durationMs as number) >= (line!.upstreamMs as number), "the total includes the upstream time");
    assert.ok((line!.pluginsMs as number) > 0, "plugin time is counted");
    assert.match(String(line!.time), /^\d{4}-\d\d-\d\dT/);
    assert.match(String(line!.traceId), /^[0-9a-f]{32}$/);
    assert.is(refused!.status, 404);
    assert.is(refused!.path, "/nowhere");
    assert.is(refused!.route, null);
    assert.type(refused!.requestId, "string");
  } finally {
    await weir.stop();
    await up.close();
  }
});

AccessLog("log.access: false writes nothing, and a reload can turn it back on", async () => {
  const up = await startUpstream();
  const sink = new LineSink();
  const weir = await startWeir(config(up.url, { log: { access: false } }), { accessLog: sink });
  try {
    await fetch(`${weir.url}/users/1`).then((r) => r.arrayBuffer());
    await new Promise((r) => setTimeout(r, 100));
    assert.is(sink.lines.length, 0);
    weir.write(config(up.url, { log: { access: true } }));
    await weir.rt.reload();
    await fetch(`${weir.url}/users/2`).then((r) => r.arrayBuffer());
    await until(() => sink.lines.length === 1, 3000, "one access line");
    assert.is(sink.json()[0]!.path, "/users/2");
  } finally {
    await weir.stop();
    await up.close();
  }
});

const Trace = suite("W3C traceparent");

Trace("a valid traceparent is forwarded unchanged and its trace id is logged", async () => {
  const up = await startUpstream();
  const sink = new LineSink();
  const weir = await startWeir(config(up.url), { accessLog: sink });
  const given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  try {
    await fetch(`${weir.url}/users/1`, { headers: { traceparent: given } }).then((r) => r.arrayBuffer());
    assert.is(up.seen[0]!.headers.traceparent, given);
    await until(() => sink.lines.length === 1, 3000, "one access line");
    assert.is(sink.json()[0]!.traceId, "4bf92f3577b34da6a3ce929d0e0e4736");
  } finally {
    await weir.stop();
    await up.close();
  }
});

Trace("an absent or invalid traceparent is replaced by a new trace, a different one per request", async () => {
  const up = await startUpstream();
  const sink = new LineSink();
  const weir = await startWeir(config(up.url), { accessLog: sink });
  try {
    await fetch(`${weir.url}/users/1`).then((r) => r.arrayBuffer());
    await fetch(`${weir.url}/users/2`).then((r) => r.arrayBuffer());
    for (const bad of ["00-00000000000000000000000000000000-00f067aa0ba902b7-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", "garbage"])
      await fetch(`${weir.url}/users/3`, { headers: { traceparent: bad } }).then((r) => r.arrayBuffer());
    const sent = up.seen.map((s) => s.headers.traceparent as string);
    assert.is(sent.length, 6);
    for (const tp of sent) {
      assert.match(tp, /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      assert.is.not(tp.slice(3, 35), "00000000000000000000000000000000");
      assert.is.not(tp.slice(3, 35), "4bf92f3577b34da6a3ce929d0e0e4736");
    }
    assert.is(new Set(sent.map((t) => t.slice(3, 35))).size, 6, "every request gets its own trace");
    await until(() => sink.lines.length === 6, 3000, "six access lines");
    assert.equal(sink.json().map((l) => l.traceId), sent.map((t) => t.slice(3, 35)));
  } finally {
    await weir.stop();
    await up.close();
  }
});

AccessLog("a request node:http cannot parse still gets a line, with the id of its 400 answer", async () => {
  const up = await startUpstream();
  const sink = new LineSink();
  const weir = await startWeir(config(up.url), { accessLog: sink });
  try {
    const res = await rawRequest(weir.port, "GET /users HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n");
    assert.is(res.status, 400);
    await until(() => sink.lines.length >= 1, 3000, "an access line");
    const [line] = sink.json();
    assert.is(line!.status, 400);
    assert.is(line!.route, null);
    assert.is(line!.clientIp, "127.0.0.1");
    assert.is(line!.requestId, res.headers["x-request-id"]);
    assert.is(up.seen.length, 0);
  } finally { await weir.stop(); await up.close(); }
});

AccessLog.run();
Trace.run();
