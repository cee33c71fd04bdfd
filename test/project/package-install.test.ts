/**
 * Weir as a package, the way a user gets it: `npm pack`, `npm install ./weir-*.tgz` into a fresh
 * directory, then `npx weir validate`, `npx weir plugin new`, tsc on the new plugin project
 * against `weir/sdk`, and `npx weir start` serving a request through that plugin.
 *
 * Bounded: the pack runs in a copy of the tree (so the suite's own dist/ is never rewritten under
 * the other test files), npm installs from its cache first (--prefer-offline), and isolated-vm's
 * install script is denied in the fresh project: compiling isolated-vm 5.0.4 for Node 20 takes
 * minutes, and `npm ci` of this repository already runs that same script. On Node 20 the fresh
 * project gets this checkout's build of the same isolated-vm version instead; on Node 22 and 24 it
 * uses isolated-vm 6's prebuilt binary from the tarball, as any user's install does.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { request } from "undici";
import { ROOT } from "../support/fixtures.js";
import { startUpstream, type TestUpstream } from "../support/upstream.js";
import { tempDir } from "../support/weir.js";

const dir = tempDir("weir-package-");
const app = join(dir, "app");
/** Child processes see this Node first, so npm, npx and weir run on the Node under test. */
const env = { ...process.env, NO_COLOR: "1", PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}` };
const started = new Set<ChildProcess>();
process.on("exit", () => { for (const c of started) killGroup(c, "SIGKILL"); });

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  // npx runs weir through a shell and does not pass SIGTERM on: signal the whole group we started.
  if (child.pid !== undefined) try { process.kill(-child.pid, signal); } catch { /* gone */ }
}

/** Runs a command to its end; `out` is stdout and stderr interleaved, `stdout` stdout alone. */
function run(cmd: string, args: string[], cwd: string, timeoutMs = 60_000): Promise<{ code: number | null; out: string; stdout: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    started.add(child);
    let out = "";
    let stdout = "";
    child.stdout!.on("data", (d) => { out += d; stdout += d; });
    child.stderr!.on("data", (d) => (out += d));
    const timer = setTimeout(() => { out += `\n[killed after ${timeoutMs} ms]`; killGroup(child, "SIGKILL"); }, timeoutMs);
    child.on("close", (code) => { clearTimeout(timer); started.delete(child); resolve({ code, out, stdout }); });
  });
}

const versionOf = (name: string) => (JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;

const Package = suite("weir as a package");
let upstream: TestUpstream;

Package.before(async () => {
  upstream = await startUpstream();
});
Package.after(async () => {
  await upstream.close();
});

Package("npm pack makes a tarball with the built runtime, the SDK and its declarations", async () => {
  const tree = join(dir, "tree");
  for (const part of ["bin", "core", "sdk", "plugins", "docs", "scripts", "README.md", "package.json", "tsconfig.json", "tsconfig.types.json"]) {
    cpSync(join(ROOT, part), join(tree, part), { recursive: true });
  }
  symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"));
  mkdirSync(join(dir, "out"));
  const packed = await run("npm", ["pack", "--json", "--pack-destination", join(dir, "out")], tree, 90_000);
  assert.is(packed.code, 0, packed.out);
  const info = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as { filename: string; files: { path: string }[] }[];
  const files = new Set(info[0]!.files.map((f) => f.path));
  for (const f of ["bin/weir.js", "dist/core/cli/main.js", "dist/core/index.d.ts", "dist/sdk/index.js", "dist/sdk/index.d.ts",
    "dist/core/plugin-host/testing.d.ts", "sdk/index.ts", "plugins/key-auth/plugin.ts"]) {
    assert.ok(files.has(f), `${f} is not in the package`);
  }
  assert.not.ok([...files].some((f) => f.startsWith("dist/test/") || f.startsWith("test/") || f.startsWith("core/")), "tests or TypeScript sources of the runtime were packed");
  assert.ok(existsSync(join(dir, "out", info[0]!.filename)));
});

Package("npm install ./weir-*.tgz installs it into a fresh directory", async () => {
  const tgz = readdirSync(join(dir, "out")).find((f) => /^weir-.*\.tgz$/.test(f))!;
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({
    name: "weir-user", version: "1.0.0", private: true,
    allowScripts: { "isolated-vm": false, esbuild: true },
  }, null, 2));
  const installed = await run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", join("..", "out", tgz),
    `typescript@${versionOf("typescript")}`, `@types/node@${versionOf("@types/node")}`], app, 90_000);
  assert.is(installed.code, 0, installed.out);
  assert.ok(existsSync(join(app, "node_modules", ".bin", "weir")), "no weir bin");
  if (Number(process.versions.modules) < 127) {
    const out = join(app, "node_modules", "isolated-vm-5", "out");
    mkdirSync(out, { recursive: true });
    copyFileSync(join(ROOT, "node_modules", "isolated-vm-5", "out", "isolated_vm.node"), join(out, "isolated_vm.node"));
  }
});

Package("npx weir validate checks a config that uses a built-in plugin", async () => {
  writeFileSync(join(app, "builtin.yaml"), [
    "routes:",
    "  - match: { path: /api }",
    `    upstream: ${upstream.url}`,
    "    plugins:",
    "      - use: key-auth",
    "        config: { keys: { k1: alice } }",
    "",
  ].join("\n"));
  const ok = await run("npx", ["--no", "--", "weir", "validate", "-c", "builtin.yaml"], app);
  assert.is(ok.code, 0, ok.out);
  assert.match(ok.out, /^ok$/m);
  writeFileSync(join(app, "bad.yaml"), "routes:\n  - match: { path: /api }\n    upstream: nowhere\n");
  const bad = await run("npx", ["--no", "--", "weir", "validate", "-c", "bad.yaml"], app);
  assert.is(bad.code, 1, bad.out);
  assert.match(bad.out, /bad\.yaml: routes\[0\]\.upstream: /);
});

Package("npx weir plugin new makes a project that type-checks against weir/sdk with tsc", async () => {
  const made = await run("npx", ["--no", "--", "weir", "plugin", "new", "hello"], app);
  assert.is(made.code, 0, made.out);
  const tsc = await run("npx", ["--no", "--", "tsc", "--noEmit", "-p", "hello"], app);
  assert.is(tsc.code, 0, tsc.out);
  // The types are real: a config used as the wrong type is an error, not an `any` let through.
  const source = join(app, "hello", "src", "plugin.ts");
  const good = readFileSync(source, "utf8");
  writeFileSync(source, good.replace('ctx.request.headers.set("x-greeting", ctx.config.greeting);', "const n: number = ctx.config.greeting; void n;"));
  const wrong = await run("npx", ["--no", "--", "tsc", "--noEmit", "-p", "hello"], app);
  writeFileSync(source, good);
  assert.is.not(wrong.code, 0, wrong.out);
  assert.match(wrong.out, /src\/plugin\.ts\(\d+,\d+\): error TS2322: Type 'string' is not assignable to type 'number'/);
  const built = await run("npx", ["--no", "--", "weir", "plugin", "build", "hello"], app);
  assert.is(built.code, 0, built.out);
  assert.match(built.out, /type-checked and bundled/);
});

Package("npx weir start serves a request through the new plugin, and stops on SIGTERM", async () => {
  writeFileSync(join(app, "weir.yaml"), [
    "listen: { port: 0, host: 127.0.0.1 }",
    "admin: { port: 0, host: 127.0.0.1 }",
    "routes:",
    "  - match: { path: /api }",
    `    upstream: ${upstream.url}`,
    "    plugins:",
    "      - use: ./hello/src/plugin.ts",
    "        config: { greeting: hi }",
    "",
  ].join("\n"));
  const child = spawn("npx", ["--no", "--", "weir", "start"], { cwd: app, env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  started.add(child);
  let out = "";
  // "close": every process of the chain (npx, its shell, weir and the server) let go of the output.
  const exited = new Promise<void>((resolve) => child.on("close", () => { started.delete(child); resolve(); }));
  const listening = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`weir did not print where it listens within 30 s:\n${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d;
      const m = /weir: listening on (http:\/\/\S+)/.exec(out);
      if (m) { clearTimeout(timer); resolve(m[1]!); }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    void exited.then(() => { clearTimeout(timer); reject(new Error(`weir exited:\n${out}`)); });
  });
  try {
    const base = await listening;
    const res = await request(`${base}/api/orders`);
    const body = (await res.body.json()) as { url: string; headers: Record<string, string> };
    assert.is(res.statusCode, 200);
    assert.is(res.headers["x-plugin"], "hello");
    assert.is(body.url, "/api/orders");
    assert.is(body.headers["x-greeting"], "hi");
    const seen = upstream.seen.length;
    killGroup(child, "SIGTERM");
    const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 15_000))]);
    assert.ok(stopped, `weir did not stop within 15 s of SIGTERM:\n${out}`);
    assert.match(out, /weir: stopped/);
    assert.is(upstream.seen.length, seen);
  } finally {
    killGroup(child, "SIGKILL");
  }
});

Package.run();
