/**
 * How a config file is read: YAML or JSON, `${VAR}` references, durations, and what a file that
 * cannot be parsed or read is told.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compileGeneration } from "../../core/config/compile.js";
import { toMs } from "../../core/config/duration.js";
import { loadConfigFile } from "../../core/config/loader.js";
import type { WeirConfig } from "../../core/config/schema.js";
import { ConfigError, formatProblem } from "../../core/errors.js";
import { TargetRegistry } from "../../core/upstream/target-registry.js";

const dir = mkdtempSync(join(tmpdir(), "weir-config-test-"));
let n = 0;

function write(text: string, ext = "yaml"): string {
  const file = join(dir, `config-${++n}.${ext}`);
  writeFileSync(file, text);
  return file;
}

/** Loads `text` as a file; returns the config or the problem lines (without `FILE: `). */
function load(text: string, env: NodeJS.ProcessEnv = {}, ext = "yaml"): { config?: WeirConfig; problems: string[] } {
  const file = write(text, ext);
  try {
    return { config: loadConfigFile(file, env), problems: [] };
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    const lines = e.problems.map(formatProblem);
    for (const l of lines) assert.ok(l.startsWith(`${file}: `), l);
    return { problems: lines.map((l) => l.slice(file.length + 2)) };
  }
}

const Env = suite("${VAR} and ${VAR:-default} expand from the environment");

Env("${VAR} is replaced by the variable's value", () => {
  const { config } = load("admin: { token: \"${TOKEN}\" }\n", { TOKEN: "s3cret" });
  assert.equal(config!.admin, { token: "s3cret" });
});

Env("a reference can be part of a longer string, several per string", () => {
  const { config } = load("routes:\n  - upstream: \"http://${UP_HOST}:${UP_PORT:-9001}\"\n", { UP_HOST: "10.1.2.3" });
  assert.is(config!.routes![0]!.upstream, "http://10.1.2.3:9001");
});

Env("${VAR:-default} uses the default when the variable is unset or empty", () => {
  const text = "admin: { host: \"${ADMIN_HOST:-127.0.0.1}\" }\n";
  assert.equal(load(text, {}).config!.admin, { host: "127.0.0.1" });
  assert.equal(load(text, { ADMIN_HOST: "" }).config!.admin, { host: "127.0.0.1" });
  assert.equal(load(text, { ADMIN_HOST: "0.0.0.0" }).config!.admin, { host: "0.0.0.0" });
});

Env("lower-case references are left for plugin templates, and $${ is a literal ${", () => {
  const text = [
    "routes:",
    "  - upstream: http://127.0.0.1:9001",
    "    plugins:",
    "      - use: transform",
    "        config: { request: { setHeaders: { x-user: \"${consumer}\", x-id: \"${params.id}\", x-raw: \"$${HOME}\", x-env: \"${HOME}\" } } }",
    "",
  ].join("\n");
  const { config, problems } = load(text, { HOME: "/root" });
  assert.equal(problems, []);
  assert.equal((config!.routes![0]!.plugins![0]!.config as { request: unknown }).request, {
    setHeaders: { "x-user": "${consumer}", "x-id": "${params.id}", "x-raw": "${HOME}", "x-env": "/root" },
  });
});

Env("an empty default is allowed: ${VAR:-}", () => {
  assert.equal(load("admin: { token: \"${WEIR_ADMIN_TOKEN:-}\" }\n").config!.admin, { token: "" });
});

Env("a value that is only a reference to a number becomes a number: port: ${PORT:-8080}", () => {
  assert.equal(load("listen:\n  port: ${PORT:-8080}\n").config!.listen, { port: 8080 });
  assert.equal(load("listen:\n  port: ${PORT:-8080}\n", { PORT: "9090" }).config!.listen, { port: 9090 });
  assert.equal(load("listen: { port: \"${PORT:-8080}\" }\n").config!.listen, { port: 8080 });
});

Env("true and false from a reference become booleans", () => {
  const { config } = load("routes:\n  - { upstream: \"http://h\", stripPrefix: \"${STRIP:-true}\" }\n");
  assert.is(config!.routes![0]!.stripPrefix, true);
});

Env("a number inside a longer string stays a string", () => {
  const { config } = load("admin: { token: \"t-${N:-42}\" }\n");
  assert.equal(config!.admin, { token: "t-42" });
});

Env("a plain ${VAR} set to the empty string expands to it; only an unset one is a problem", () => {
  assert.equal(load("admin: { token: \"${TOKEN}\" }\n", { TOKEN: "" }).config!.admin, { token: "" });
  assert.equal(load("admin: { token: \"${TOKEN}\" }\n", {}).problems.length, 1);
});

Env("a missing variable without a default is one problem at its key, with the fix", () => {
  const { problems } = load("listen:\n  port: ${PORT}\nadmin: { token: \"${ADMIN_TOKEN}\" }\n");
  assert.equal(problems, [
    "listen.port: environment variable PORT is not set (write ${PORT:-default} to give a default)",
    "admin.token: environment variable ADMIN_TOKEN is not set (write ${ADMIN_TOKEN:-default} to give a default)",
  ]);
});

Env("a value from the environment is data, never YAML structure", () => {
  const { config } = load("admin: { token: \"${TOKEN}\" }\n", { TOKEN: "x }\nlisten: { port: 1" });
  assert.equal(config!.admin, { token: "x }\nlisten: { port: 1" });
  assert.is(config!.listen, undefined);
});

Env("$VAR without braces is left as it is", () => {
  assert.equal(load("admin: { token: \"$TOKEN\" }\n", { TOKEN: "x" }).config!.admin, { token: "$TOKEN" });
});

Env("references expand in JSON files too", () => {
  const { config } = load('{"listen": {"port": "${PORT:-8081}"}}', {}, "json");
  assert.equal(config!.listen, { port: 8081 });
});

Env.run();

const Formats = suite("YAML and JSON files, and files that cannot be parsed");

Formats("a .json file is read as JSON, with the same schema and problem format", () => {
  const good = load(JSON.stringify({ listen: { port: 8080 }, upstreams: { api: { targets: ["http://127.0.0.1:9001"] } }, routes: [{ match: { path: "/api" }, upstream: "api" }] }), {}, "json");
  assert.equal(good.problems, []);
  assert.is(good.config!.routes![0]!.upstream, "api");
  const bad = load(JSON.stringify({ listen: { port: 8080, hots: "x" }, routes: [{}] }), {}, "json");
  assert.equal(bad.problems, [
    'listen.hots: unknown key (did you mean "host"?); expected one of: port, host, tls',
    "routes[0].upstream: is required",
  ]);
});

Formats("invalid JSON says so, with the line and column", () => {
  const { problems } = load('{\n  "listen": {"port": 1,}\n}', {}, "json");
  assert.is(problems.length, 1);
  assert.match(problems[0]!, /^\(root\): invalid JSON: .*\(line 2, column \d+\)$/);
});

Formats("invalid YAML is one line naming the line and column of the mistake", () => {
  const { problems } = load("listen: { port: 8080\nroutes: []\n");
  assert.is(problems.length, 1, problems.join("\n"));
  assert.match(problems[0]!, /^\(root\): invalid YAML: .* at line \d+, column \d+$/);
});

Formats("an unquoted ${VAR} inside { } gets a hint to quote it, not twenty lines", () => {
  const { problems } = load("listen: { port: ${PORT} }\nadmin: { port: 9901 }\n");
  assert.is(problems.length, 1, problems.join("\n"));
  assert.match(problems[0]!, /invalid YAML: .*line 1, column \d+ \(inside \{ \} or \[ \], put a \$\{VAR\} reference in quotes: "\$\{VAR\}"\)/);
});

Formats("a key written twice is refused (the second would silently win)", () => {
  const { problems } = load("listen:\n  port: 1\n  port: 2\n");
  assert.equal(problems, ["(root): invalid YAML: Map keys must be unique at line 3, column 3"]);
});

Formats("a missing file is one problem naming the file", () => {
  const file = join(dir, "does-not-exist.yaml");
  try {
    loadConfigFile(file, {});
    assert.unreachable("a missing file was loaded");
  } catch (e) {
    assert.instance(e, ConfigError);
    const lines = (e as ConfigError).problems.map(formatProblem);
    assert.is(lines.length, 1);
    assert.match(lines[0]!, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: \\(root\\): cannot read the config file: .*ENOENT`));
  }
});

Formats.run();

const Durations = suite("durations");

Durations("each written form converts to milliseconds", () => {
  const table: [string | number, number][] = [["250ms", 250], ["2s", 2000], ["1m", 60_000], ["1h", 3_600_000], ["1.5s", 1500], ["0.25s", 250], [750, 750], [0, 0]];
  for (const [d, ms] of table) assert.is(toMs(d), ms, String(d));
});

Durations("durations from the file reach the compiled generation as milliseconds", async () => {
  const config = load(`
limits: { requestTimeout: 2s, keepAliveTimeout: 1500ms }
shutdownTimeout: 0.5m
upstreams: { api: { targets: ["http://127.0.0.1:9"], timeouts: { response: 3s } } }
routes:
  - { upstream: api }
  - { upstream: api, timeouts: { response: 250 } }
`).config!;
  const registry = new TargetRegistry();
  try {
    const gen = compileGeneration(config, "weir.yaml", 1, registry);
    assert.is(gen.limits.requestTimeoutMs, 2000);
    assert.is(gen.limits.keepAliveTimeoutMs, 1500);
    // The default headersTimeout (10s) never outlives the whole request's timeout.
    assert.is(gen.limits.headersTimeoutMs, 2000);
    assert.is(gen.shutdownTimeoutMs, 30_000);
    assert.is(gen.routes[0]!.responseTimeoutMs, 3000);
    assert.is(gen.routes[1]!.responseTimeoutMs, 250);
  } finally {
    await registry.closeAll();
  }
});

Durations("unset limits get their documented defaults", async () => {
  const registry = new TargetRegistry();
  try {
    const gen = compileGeneration(load("").config!, "weir.yaml", 1, registry);
    assert.equal(gen.limits, { maxHeaderBytes: 16384, maxBodyBytes: 10 * 1024 * 1024, requestTimeoutMs: 60_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 5_000 });
    assert.is(gen.shutdownTimeoutMs, 10_000);
  } finally {
    await registry.closeAll();
  }
});

Durations.after(() => rmSync(dir, { recursive: true, force: true }));
Durations.run();
