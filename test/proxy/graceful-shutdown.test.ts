/**
 * Graceful shutdown with the real CLI: `weir start` gets SIGTERM (or SIGINT) while a slow request
 * is in flight; it stops accepting at once, lets the request finish (up to shutdownTimeout) and
 * exits 0.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { connect } from "node:net";
import { Agent, request } from "undici";
import { killGroup, runWeir, type CliProcess } from "../support/cli.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { tempDir, writeConfig } from "../support/weir.js";

const SLOW_MS = 1000;

interface Ctx { up: TestUpstream; arrivals: (() => void)[] }

const Shutdown = suite<Ctx>("graceful shutdown");

Shutdown.before(async (ctx) => {
  ctx.arrivals = [];
  // /slow answers after ~1 s, /hang never does; both tell the test as soon as they have the request.
  ctx.up = await startUpstream((req, res) => {
    for (const a of ctx.arrivals.splice(0)) a();
    if (req.url === "/hang") return;
    const delay = req.url === "/slow" ? SLOW_MS : 0;
    setTimeout(() => { res.writeHead(200, { "content-type": "text/plain" }); res.end(`done ${req.url}`); }, delay);
  });
});
Shutdown.after(async (ctx) => { await ctx.up.close(); });

/** Starts `weir start -c FILE` and resolves once it printed where it listens. */
async function startCli(ctx: Ctx, extra: Record<string, unknown> = {}): Promise<{ weir: CliProcess; url: string; port: number }> {
  const file = writeConfig(tempDir(), {
    listen: { port: 0, host: "127.0.0.1" },
    admin: false,
    log: { level: "silent" },
    routes: [{ match: { path: "/" }, upstream: ctx.up.url }],
    ...extra,
  });
  const weir = runWeir(["start", "-c", file]);
  const [, url] = await weir.waitFor(/weir: listening on (\S+)/);
  return { weir, url: url!, port: Number(new URL(url!).port) };
}

const nextArrival = (ctx: Ctx) => new Promise<void>((r) => ctx.arrivals.push(r));

/**
 * What a new connection gets during the drain. "closed" is a connection the kernel accepted into
 * the backlog in the instant between the "received" line and the listener closing: Weir drops it
 * unanswered, which is as good as refused.
 */
function tryNewConnection(port: number): Promise<"refused" | "closed" | "served"> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    s.once("connect", () => {
      s.write("GET /new HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
      s.once("data", () => { s.destroy(); resolve("served"); });
      s.once("close", () => resolve("closed"));
    });
    s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED" ? "refused" : "closed"));
  });
}

/** New connections are refused soon after the signal (and none is ever served). */
async function assertRefusesNewConnections(port: number): Promise<void> {
  const seen: string[] = [];
  for (let i = 0; i < 40; i++) {
    const r = await tryNewConnection(port);
    seen.push(r);
    assert.is.not(r, "served", "a new connection was served during shutdown");
    if (r === "refused") return;
    await new Promise((res) => setTimeout(res, 25));
  }
  assert.unreachable(`new connections were still accepted during shutdown: ${seen.join(", ")}`);
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Shutdown(`on ${signal} an in-flight request completes, new connections are refused, and weir exits 0`, async (ctx) => {
    const { weir, url, port } = await startCli(ctx);
    const agent = new Agent();
    try {
      const arrived = nextArrival(ctx);
      // Settled into a value at once, so that a failure is reported by the assertions below rather
      // than as an unhandled rejection while the test waits for the signal to be handled.
      const slow = request(`${url}/slow`, { dispatcher: agent }).then(
        async (res) => ({ status: res.statusCode, connection: res.headers["connection"], body: await res.body.text() }),
        (err: Error) => ({ status: 0, connection: undefined, body: `request failed: ${err.message}` }),
      );
      await arrived;
      const started = Date.now();
      weir.child.kill(signal);
      await weir.waitFor(new RegExp(`${signal} received`));

      await assertRefusesNewConnections(port);

      const res = await slow;
      assert.is(res.body, "done /slow", `${res.body}\nweir output:\n${weir.output()}`);
      assert.is(res.status, 200);
      // Draining: the client is told not to reuse the connection.
      assert.is(res.connection, "close");

      const exit = await weir.exited;
      assert.equal(exit, { code: 0, signal: null }, weir.output());
      assert.ok(Date.now() - started >= SLOW_MS - 200, "weir exited before the slow request could finish");
      assert.match(weir.output(), /weir: stopped/);
    } finally {
      killGroup(weir.child);
      await agent.close();
    }
  });
}

Shutdown("an idle keep-alive connection does not hold up the exit", async (ctx) => {
  const { weir, url } = await startCli(ctx, { limits: { keepAliveTimeout: "30s" } });
  const agent = new Agent({ keepAliveTimeout: 30_000 });
  try {
    const res = await request(`${url}/fast`, { dispatcher: agent });
    assert.is(await res.body.text(), "done /fast");
    const started = Date.now();
    weir.child.kill("SIGTERM");
    const exit = await weir.exited;
    assert.is(exit.code, 0, weir.output());
    assert.ok(Date.now() - started < 5000, `exit took ${Date.now() - started} ms with an idle connection open`);
  } finally {
    killGroup(weir.child);
    await agent.close();
  }
});

Shutdown("shutdownTimeout bounds how long a request that never ends can delay the exit", async (ctx) => {
  const { weir, url } = await startCli(ctx, { shutdownTimeout: "500ms" });
  const agent = new Agent();
  try {
    const arrived = nextArrival(ctx);
    const hanging = request(`${url}/hang`, { dispatcher: agent }).then(
      async (res) => { await res.body.text(); return `answered ${res.statusCode}`; },
      (err: Error) => `failed: ${err.message}`,
    );
    await arrived;
    const started = Date.now();
    weir.child.kill("SIGTERM");
    const exit = await weir.exited;
    const elapsed = Date.now() - started;
    assert.equal(exit, { code: 0, signal: null }, weir.output());
    assert.ok(elapsed >= 400, `weir exited after ${elapsed} ms, before shutdownTimeout`);
    assert.ok(elapsed < 4000, `weir took ${elapsed} ms to exit with shutdownTimeout 500ms`);
    // The cut request must not look like a success to the client.
    assert.not.match(await hanging, /^answered 200/);
  } finally {
    killGroup(weir.child);
    await agent.close();
  }
});

Shutdown.run();
