/**
 * The `weir` command as users run it: the real bin/weir.js in a child process (which re-executes
 * node with --no-node-snapshot), real config files, real exit codes and output.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { request } from "undici";
import { startUpstream } from "../support/upstream.js";

// dist/test/cli/cli.test.js -> the repository root
const root = fileURLToPath(new URL("../../../", import.meta.url));
const bin = join(root, "bin", "weir.js");
const dir = mkdtempSync(join(tmpdir(), "weir-cli-test-"));

interface Run { code: number | null; stdout: string; stderr: string }

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** Starts `weir ARGS` without waiting for it. */
function spawnWeir(args: string[]): ChildProcess {
  return spawn(process.execPath, [bin, ...args], { cwd: dir, env: { ...process.env, NO_COLOR: "1" }, stdio: ["ignore", "pipe", "pipe"] });
}

/** Runs `weir ARGS` to completion (killed after `timeoutMs`). */
async function weir(args: string[], timeoutMs = 30_000): Promise<Run> {
  const child = spawnWeir(args);
  let stdout = "", stderr = "";
  child.stdout!.on("data", (d) => (stdout += d));
  child.stderr!.on("data", (d) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** Resolves with the output so far once `pattern` appears on stdout, or rejects on exit/timeout. */
function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = "", err = "";
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}; stdout: ${out} stderr: ${err}`)), timeoutMs);
    child.stdout!.on("data", (d) => { out += d; if (pattern.test(out)) { clearTimeout(timer); resolve(out); } });
    child.stderr!.on("data", (d) => (err += d));
    child.once("exit", (code) => { clearTimeout(timer); reject(new Error(`weir exited with ${code} before printing ${pattern}; stdout: ${out} stderr: ${err}`)); });
  });
}

const GOOD = `
listen: { port: 0, host: 127.0.0.1 }
admin: false
upstreams:
  api: { targets: ["http://127.0.0.1:9001"] }
routes:
  - { name: users, match: { path: /api }, upstream: api, stripPrefix: true }
`;

// The validate and usage runs are independent processes: each suite starts them all at once in
// its `before` hook, and each test awaits the one it reads, so the suite takes one run's time.
type Runs<K extends string> = Record<K, Promise<Run>>;

const BAD = `
listen: { port: 70000 }
limtis: {}
upstreams:
  api: { targets: ["http://127.0.0.1:9001"], balance: fastest }
routes:
  - { match: { path: api }, upstream: api }
`;

// Problems of every stage at once: form (a port out of range), references (an unknown upstream),
// plugins (an unknown built-in, a plugin config its schema refuses); an upstream with a problem of
// its own is not reported again by the route that names it.
const EVERY_STAGE = `
listen: { port: 70000 }
upstreams:
  api: { targets: ["http://127.0.0.1:9001"] }
  broken: { targets: 5 }
routes:
  - { match: { path: /a }, upstream: nowhere }
  - { match: { path: /b }, upstream: api, plugins: [{ use: kee-auth }] }
  - { match: { path: /c }, upstream: api, plugins: [{ use: key-auth, config: { keys: "nope" } }] }
  - { match: { path: /d }, upstream: broken }
`;

const Validate = suite<{ runs: Runs<"good" | "json" | "bad" | "semantic" | "relative" | "missing" | "every" | "default"> }>("weir validate");

Validate.before((ctx) => {
  file("relative.yaml", "listen: { prot: 1 }\n");
  ctx.runs = {
    good: weir(["validate", "-c", file("good.yaml", GOOD)]),
    json: weir(["validate", "--config", file("good.json", JSON.stringify({ listen: { port: 0 }, routes: [{ upstream: "http://127.0.0.1:9001" }] }))]),
    bad: weir(["validate", "-c", file("bad.yaml", BAD)]),
    semantic: weir(["validate", "-c", file("unknown-upstream.yaml", "routes:\n  - { upstream: nowhere }\n")]),
    relative: weir(["validate", "-c", "relative.yaml"]),
    missing: weir(["validate", "-c", join(dir, "missing.yaml")]),
    every: weir(["validate", "-c", file("every-stage.yaml", EVERY_STAGE)], 30_000),
    // No -c: ./weir.yaml in the working directory.
    default: (file("weir.yaml", GOOD), weir(["validate"])),
  };
});

Validate("a good file prints ok and exits 0", async ({ runs }) => {
  const r = await runs.good;
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, "ok\n");
  assert.is(r.stderr, "");
});

Validate("--config is the long form of -c, and JSON files are accepted", async ({ runs }) => {
  const r = await runs.json;
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, "ok\n");
});

Validate("a bad file exits 1 with one FILE: path.to.key: message line per problem", async ({ runs }) => {
  const r = await runs.bad;
  const bad = join(dir, "bad.yaml");
  assert.is(r.code, 1);
  assert.is(r.stdout, "");
  // The list of valid keys after "expected one of:" grows with the schema; the line is checked up to it.
  const lines = r.stderr.trimEnd().split("\n").map((l) => l.replace(/; expected one of: .*$/, "; expected one of: …"));
  assert.equal(lines.sort(), [
    `${bad}: limtis: unknown key (did you mean "limits"?); expected one of: …`,
    `${bad}: listen.port: must be <= 65535`,
    `${bad}: routes[0].match.path: must start with "/"`,
    `${bad}: upstreams.api.balance: must be one of: round-robin, least-conn, p2c-ewma, hash, random`,
  ].sort());
});

Validate("semantic problems (an unknown upstream) are reported in the same form", async ({ runs }) => {
  const r = await runs.semantic;
  assert.is(r.code, 1);
  assert.match(r.stderr, new RegExp(`^${escape(join(dir, "unknown-upstream.yaml"))}: routes\\[0\\]\\.upstream: unknown upstream "nowhere"`));
  assert.is(r.stderr.trimEnd().split("\n").length, 1);
});

Validate("problems of every stage are reported in one run: schema, references and plugins", async ({ runs }) => {
  const r = await runs.every;
  const f = join(dir, "every-stage.yaml");
  assert.is(r.code, 1);
  assert.is(r.stdout, "");
  const lines = r.stderr.trimEnd().split("\n");
  for (const l of lines) assert.ok(l.startsWith(`${f}: `), l);
  const at = (path: string) => lines.filter((l) => l.startsWith(`${f}: ${path}: `));
  assert.equal(at("listen.port"), [`${f}: listen.port: must be <= 65535`]);
  assert.is(at("upstreams.broken.targets").length, 1);
  assert.match(at("routes[0].upstream")[0] ?? "", /unknown upstream "nowhere"/);
  assert.match(at("routes[1].plugins[0].use")[0] ?? "", /unknown built-in plugin "kee-auth" \(did you mean "key-auth"\?\)/);
  assert.is(at("routes[2].plugins[0].config.keys").length, 1, r.stderr);
  assert.is(at("routes[3].upstream").length, 0, "an upstream with its own problem is not unknown");
  assert.is(lines.length, 5, r.stderr);
});

Validate("without -c, ./weir.yaml is validated", async ({ runs }) => {
  const r = await runs.default;
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, "ok\n");
});

Validate("a file given relative to the working directory is named as given", async ({ runs }) => {
  const r = await runs.relative;
  assert.is(r.code, 1);
  assert.equal(r.stderr.trimEnd().split("\n"), [
    "relative.yaml: listen.port: is required",
    'relative.yaml: listen.prot: unknown key (did you mean "port"?); expected one of: port, host, tls',
  ]);
});

Validate("a missing file exits 1 naming the file", async ({ runs }) => {
  const r = await runs.missing;
  assert.is(r.code, 1);
  assert.is(r.stdout, "");
  assert.match(r.stderr, new RegExp(`^${escape(join(dir, "missing.yaml"))}: \\(root\\): cannot read the config file: .*ENOENT`));
});

Validate.run();

const Usage = suite<{ runs: Runs<"help" | "h" | "unknown" | "none" | "option" | "version"> }>("usage, help and unknown commands");

Usage.before((ctx) => {
  ctx.runs = {
    help: weir(["--help"]),
    h: weir(["-h"]),
    unknown: weir(["strat"]),
    none: weir([]),
    option: weir(["validate", "--confgi", "x.yaml"]),
    version: weir(["--version"]),
  };
});

Usage("--help and -h print the usage on stdout and exit 0", async ({ runs }) => {
  for (const r of [await runs.help, await runs.h]) {
    assert.is(r.code, 0);
    assert.match(r.stdout, /^Usage: weir <command>/);
    assert.match(r.stdout, /start\s+\[-c FILE\]/);
    // -c is optional for both, with its default said once.
    assert.match(r.stdout, /start\s+\[-c FILE\]/);
    assert.match(r.stdout, /validate\s+\[-c FILE\]/);
    assert.match(r.stdout, /-c, --config FILE .*\(default: \.\/weir\.yaml\)/);
    assert.is(r.stderr, "");
  }
});

Usage("an unknown command exits 2, naming it, with the usage", async ({ runs }) => {
  const r = await runs.unknown;
  assert.is(r.code, 2);
  assert.match(r.stderr, /^weir: unknown command "strat"/);
  assert.match(r.stderr, /Usage: weir <command>/);
  assert.is(r.stdout, "");
});

Usage("no command at all exits 2 with the usage", async ({ runs }) => {
  const r = await runs.none;
  assert.is(r.code, 2);
  assert.match(r.stderr, /Usage: weir <command>/);
});

Usage("an unknown option exits 2 with the usage", async ({ runs }) => {
  const r = await runs.option;
  assert.is(r.code, 2);
  assert.match(r.stderr, /^weir: .*--confgi/);
  assert.match(r.stderr, /Usage: weir <command>/);
});

Usage("--version prints the version", async ({ runs }) => {
  const r = await runs.version;
  assert.is(r.code, 0);
  assert.match(r.stdout, /^weir \d+\.\d+\.\d+/);
});

Usage.run();

const Start = suite<{ blocker: Server; busyPort: number; runs: Runs<"busy" | "invalid"> }>("weir start");

Start.before(async (ctx) => {
  // A port that is certainly in use: we hold it for the whole suite.
  ctx.blocker = createServer();
  ctx.blocker.listen(0, "127.0.0.1");
  await once(ctx.blocker, "listening");
  ctx.busyPort = (ctx.blocker.address() as AddressInfo).port;
  ctx.runs = {
    busy: weir(["start", "-c", file("busy.yaml", GOOD.replace("port: 0", `port: ${ctx.busyPort}`))]),
    invalid: weir(["start", "-c", file("start-bad.yaml", "listen: { port: 0 }\nroutes:\n  - { upstream: nowhere }\n")]),
  };
});

Start.after(async (ctx) => {
  await ctx.runs.busy;
  ctx.blocker.close();
  rmSync(dir, { recursive: true, force: true });
});

Start("start prints where it listens, serves a request, and exits 0 on SIGTERM", async () => {
  const up = await startUpstream();
  const child = spawnWeir(["start", "-c", file("start.yaml", GOOD.replace("http://127.0.0.1:9001", up.url))]);
  try {
    const out = await waitForOutput(child, /weir: listening on http:\/\/\S+\n/);
    const url = /weir: listening on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(out)?.[1];
    assert.ok(url, out);
    const res = await request(`${url}/api/hello?x=1`);
    assert.is(res.statusCode, 200);
    assert.is(((await res.body.json()) as { url: string }).url, "/hello?x=1");
    assert.is(up.seen.length, 1);
    child.kill("SIGTERM");
    const [code] = (await once(child, "exit")) as [number | null];
    assert.is(code, 0);
  } finally {
    child.kill("SIGKILL");
    await up.close();
  }
});

Start("start prints the admin address when the admin server is on", async () => {
  const child = spawnWeir(["start", "-c", file("admin.yaml", GOOD.replace("admin: false", "admin: { port: 0, host: 127.0.0.1 }"))]);
  try {
    const out = await waitForOutput(child, /weir: admin API on http:\/\/\S+\n/);
    const admin = /weir: admin API on (http:\/\/127\.0\.0\.1:\d+)\n/.exec(out)?.[1];
    assert.ok(admin, out);
    const res = await request(`${admin}/health`);
    assert.is(res.statusCode, 200);
    await res.body.text();
    child.kill("SIGINT");
    const [code] = (await once(child, "exit")) as [number | null];
    assert.is(code, 0);
  } finally {
    child.kill("SIGKILL");
  }
});

Start("start on a port already in use exits 1 with a clear message", async ({ runs, busyPort }) => {
  const r = await runs.busy;
  assert.is(r.code, 1);
  assert.is(r.stdout, "");
  assert.match(r.stderr, new RegExp(`^weir: cannot listen on 127\\.0\\.0\\.1:${busyPort}: .*address already in use.* \\[WEIR_ERR_LISTEN_FAILED\\]\\n$`));
});

Start("start with an invalid config exits 1 with the validate lines", async ({ runs }) => {
  const r = await runs.invalid;
  assert.is(r.code, 1);
  assert.match(r.stderr, new RegExp(`^${escape(join(dir, "start-bad.yaml"))}: routes\\[0\\]\\.upstream: unknown upstream "nowhere"`));
});

Start("start without -c reads ./weir.yaml", async () => {
  file("weir.yaml", "listen: { port: 0, host: 127.0.0.1 }\nadmin: false\n");
  const child = spawnWeir(["start"]);
  try {
    await waitForOutput(child, /weir: listening on http:\/\/127\.0\.0\.1:\d+\n/);
    child.kill("SIGTERM");
    const [code] = (await once(child, "exit")) as [number | null];
    assert.is(code, 0);
  } finally {
    child.kill("SIGKILL");
  }
});

Start.run();

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
