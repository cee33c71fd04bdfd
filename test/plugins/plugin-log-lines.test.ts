/**
 * Every ctx.log line a plugin writes names the request it was written for, in every hook: onLog
 * lines (which reach the host after the response is gone) used to carry `"requestId":""`. A real
 * Weir with a real isolate, its operational log read line by line.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { Writable } from "node:stream";
import { pino } from "pino";
import { request } from "undici";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { startWeir, type TestWeir } from "../support/weir.js";
import { pluginFixture, poll } from "./support.js";

const Lines = suite<{ up: TestUpstream; weir: TestWeir; lines: Record<string, unknown>[] }>("plugin log lines name their request");

Lines.before(async (ctx) => {
  ctx.up = await startUpstream();
  ctx.lines = [];
  const sink = new Writable({ write(chunk, _e, cb) { for (const l of String(chunk).split("\n")) if (l) ctx.lines.push(JSON.parse(l) as Record<string, unknown>); cb(); } });
  ctx.weir = await startWeir({ routes: [{ match: { path: "/" }, upstream: ctx.up.url, plugins: [{ use: pluginFixture("log-lines.ts") }] }] }, { logger: pino({ level: "info" }, sink) });
});
Lines.after(async ({ weir, up }) => { await weir.stop(); await up.close(); });

Lines("lines from onRequest, onLog and after an await in onLog carry the request's id", async ({ weir, lines }) => {
  const ids = ["req-one", "req-two", "req-three"];
  for (const id of ids) {
    const res = await request(`${weir.url}/x`, { headers: { "x-request-id": id } });
    await res.body.text();
    assert.is(res.headers["x-request-id"], id);
  }
  const mine = (msg: string) => lines.filter((l) => l.plugin === "log-lines" && l.msg === msg);
  await poll("every onLog line", () => (mine("from onLog").length === 3 && mine("from onLog, after an await").length === 3 ? true : undefined), 5000);
  for (const msg of ["from onRequest", "from onLog", "from onLog, after an await"]) {
    assert.equal(mine(msg).map((l) => l.requestId).sort(), [...ids].sort(), msg);
  }
  assert.equal(mine("from onLog").map((l) => (l.fields as { status: number }).status), [200, 200, 200]);
});

Lines("a request id Weir made is the one on the log line and on the response", async ({ weir, lines }) => {
  const res = await request(`${weir.url}/generated`);
  await res.body.text();
  const id = String(res.headers["x-request-id"]);
  assert.ok(id.length > 0);
  await poll("the onLog line", () => (lines.some((l) => l.msg === "from onLog" && l.requestId === id) ? true : undefined), 5000);
});

Lines.run();
