/**
 * timeouts.connect: an upstream that never completes the TCP handshake gets the client a 504 in
 * about the configured time. Loopback answers every SYN, so the test fills the accept queue of a
 * listener whose process is stopped (SIGSTOP): further SYNs are dropped, as on a black-holed
 * network, and only on 127.0.0.1.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import { connect, type Socket } from "node:net";
import { once } from "node:events";
import { request } from "undici";
import { startWeir } from "../support/weir.js";

const ConnectTimeout = suite<{ child: ChildProcess; port: number; fillers: Socket[] }>("connect timeout");

ConnectTimeout.before(async (ctx) => {
  ctx.child = spawn(process.execPath, ["-e", "const s=require('net').createServer(()=>{}); s.listen({port:0,host:'127.0.0.1',backlog:1},()=>console.log(s.address().port))"], { stdio: ["ignore", "pipe", "inherit"] });
  const [line] = await once(ctx.child.stdout!, "data");
  ctx.port = Number(String(line).trim());
  process.kill(ctx.child.pid!, "SIGSTOP");
  // Fill the accept queue (backlog 1 admits a couple of connections): later SYNs get no answer.
  ctx.fillers = [];
  for (let i = 0; i < 4; i++) {
    const s = connect(ctx.port, "127.0.0.1");
    s.on("error", () => undefined);
    ctx.fillers.push(s);
  }
  await new Promise((r) => setTimeout(r, 200));
});
ConnectTimeout.after((ctx) => {
  for (const s of ctx.fillers) s.destroy();
  ctx.child.kill("SIGKILL");
});

ConnectTimeout("an upstream that never completes the handshake is a 504 after timeouts.connect", async ({ port }) => {
  const weir = await startWeir({
    upstreams: { slow: { targets: [`http://127.0.0.1:${port}`], timeouts: { connect: "300ms" }, retries: { attempts: 0 } } },
    routes: [{ match: { path: "/" }, upstream: "slow" }],
  });
  try {
    const t0 = performance.now();
    const res = await request(`${weir.url}/x`);
    const body = (await res.body.json()) as { code: string; requestId: string };
    const ms = performance.now() - t0;
    assert.is(res.statusCode, 504);
    assert.is(body.code, "WEIR_ERR_UPSTREAM_TIMEOUT");
    assert.is(body.requestId, res.headers["x-request-id"]);
    assert.ok(ms >= 250 && ms < 2000, `answered after ${Math.round(ms)} ms`);
  } finally { await weir.stop(); }
});

ConnectTimeout.run();
