/**
 * `npm start` as a new user meets it: the real quickstart process (dist/examples/quickstart/run.js,
 * what `npm start` runs after building) with real ports. A port that is taken is named in one
 * line, with the environment variable that moves it, never as a stack trace; with the variables
 * set, the quickstart serves on the ports chosen.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type AddressInfo, type Server } from "node:net";
import { join } from "node:path";
import { request } from "undici";
import { killGroup } from "../support/cli.js";
import { ROOT } from "../support/fixtures.js";

const RUN = join(ROOT, "dist", "examples", "quickstart", "run.js");

/** The quickstart with `env` (every port 0, free, unless given); resolves when it exits or prints `until`. */
function quickstart(env: Record<string, string>) {
  const child = spawn(process.execPath, ["--no-node-snapshot", RUN], {
    cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1", PORT: "0", WEIR_ADMIN_PORT: "0", WEIR_DEMO_PORT_1: "0", WEIR_DEMO_PORT_2: "0", ...env },
  });
  let output = "";
  child.stdout!.on("data", (d) => (output += d));
  child.stderr!.on("data", (d) => (output += d));
  const exited = once(child, "exit").then(([code]) => code as number | null);
  const timer = setTimeout(() => killGroup(child), 30_000);
  void exited.then(() => clearTimeout(timer));
  return {
    child, exited, output: () => output,
    async waitFor(pattern: RegExp): Promise<RegExpExecArray> {
      for (let i = 0; i < 600; i++) {
        const m = pattern.exec(output);
        if (m) return m;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`the quickstart did not print ${pattern}; output:\n${output}`);
    },
  };
}

const Quickstart = suite<{ blocker: Server; taken: number }>("npm start");

Quickstart.before(async (ctx) => {
  // A port that is certainly in use: held for the whole suite.
  ctx.blocker = createServer();
  ctx.blocker.listen(0, "127.0.0.1");
  await once(ctx.blocker, "listening");
  ctx.taken = (ctx.blocker.address() as AddressInfo).port;
});
Quickstart.after(({ blocker }) => { blocker.close(); });

const noStackTrace = (out: string) => assert.not.match(out, /^\s+at .+:\d+:\d+\)?$/m, `a stack trace:\n${out}`);

Quickstart("a demo backend port that is taken is named, with the variable that chooses another", async ({ taken }) => {
  const q = quickstart({ WEIR_DEMO_PORT_2: String(taken) });
  assert.is(await q.exited, 1);
  const out = q.output();
  assert.match(out, new RegExp(`quickstart: port ${taken} \\(demo backend 2, WEIR_DEMO_PORT_2\\) is already in use on 127\\.0\\.0\\.1; choose other ports with PORT=\\.\\.\\. WEIR_ADMIN_PORT=\\.\\.\\. WEIR_DEMO_PORT_1=\\.\\.\\. WEIR_DEMO_PORT_2=\\.\\.\\. npm start`));
  noStackTrace(out);
});

Quickstart("Weir's own port taken says so and how to choose others", async ({ taken }) => {
  const q = quickstart({ WEIR_ADMIN_PORT: String(taken) });
  assert.is(await q.exited, 1);
  const out = q.output();
  assert.match(out, new RegExp(`cannot listen for the admin API on 127\\.0\\.0\\.1:${taken}: .*address already in use`));
  assert.match(out, /quickstart: Weir did not start \(above\); if a port is taken, choose other ports with PORT=\.\.\. WEIR_ADMIN_PORT=/);
  noStackTrace(out);
});

Quickstart("with the variables set, the quickstart serves on the ports chosen, through its plugin", async () => {
  const q = quickstart({});
  try {
    const [, backend1] = await q.waitFor(/demo backends on http:\/\/127\.0\.0\.1:(\d+) and http:\/\/127\.0\.0\.1:(\d+)\n/);
    const [, port] = await q.waitFor(/weir: listening on http:\/\/0\.0\.0\.0:(\d+)\n/);
    const res = await request(`http://127.0.0.1:${port}/api/hello`);
    const body = (await res.body.json()) as { backend: string; url: string };
    assert.is(res.statusCode, 200);
    assert.is(res.headers["x-served-by"], "weir-quickstart");
    assert.match(body.backend, /^backend-[12]$/);
    const echo = await request(`http://127.0.0.1:${port}/echo/anything`);
    const echoed = (await echo.body.json()) as { backend: string; url: string };
    assert.equal([echoed.backend, echoed.url], ["backend-1", "/anything"], "the echo route goes to demo backend 1, prefix stripped");
    const direct = await request(`http://127.0.0.1:${backend1}/x`);
    assert.is(((await direct.body.json()) as { backend: string }).backend, "backend-1");
    q.child.kill("SIGTERM");
    assert.is(await q.exited, 0);
  } finally {
    killGroup(q.child);
  }
});

Quickstart.run();
