/**
 * The plugin author's project workflow: `weir plugin new` writes a small TypeScript project,
 * `build` type-checks it against the SDK and bundles it, `test` runs its tests (node:test) with
 * `weir/sdk/testing` loading the plugin into the real sandbox.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { compilePlugin } from "../plugin-host/compile-plugin.js";

/** The Weir package root, from core/cli (ts) and dist/core/cli (js) alike. */
function weirRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, "package.json")) || !existsSync(join(dir, "sdk"))) {
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find the weir package root");
    dir = up;
  }
  return dir;
}

export function scaffoldPlugin(name: string, dir?: string): string {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`plugin names are lower-case letters, digits and dashes (got "${name}")`);
  const root = resolve(dir ?? name);
  if (existsSync(root) && readdirSync(root).length) throw new Error(`${root} exists and is not empty`);
  mkdirSync(join(root, "src"), { recursive: true });
  mkdirSync(join(root, "test"), { recursive: true });
  const files: Record<string, string> = {
    "src/plugin.ts": `import { definePlugin } from "weir/sdk";

/** What a route entry's \`config:\` must look like (checked against configSchema at load). */
export interface Config {
  /** Added to every request the upstream receives. */
  greeting: string;
}

export default definePlugin<Config>({
  name: "${name}",
  version: "0.1.0",
  configSchema: {
    type: "object",
    properties: { greeting: { type: "string", minLength: 1 } },
    required: ["greeting"],
    additionalProperties: false,
  },
  onRequest(ctx) {
    if (ctx.request.path === "/blocked") return ctx.respond(403, { error: "blocked by ${name}" });
    ctx.request.headers.set("x-greeting", ctx.config.greeting);
  },
  onResponse(ctx) {
    ctx.response.headers.set("x-plugin", "${name}");
  },
});
`,
    "test/plugin.test.ts": `import { test } from "node:test";
import assert from "node:assert/strict";
import { loadPlugin } from "weir/sdk/testing";

test("adds the greeting to requests", async () => {
  const plugin = await loadPlugin("src/plugin.ts", { config: { greeting: "hello" } });
  try {
    const r = await plugin.request({ path: "/orders" });
    assert.equal(r.responded, null);
    assert.equal(r.request.headers["x-greeting"], "hello");
  } finally {
    await plugin.close();
  }
});

test("answers 403 on /blocked", async () => {
  const plugin = await loadPlugin("src/plugin.ts", { config: { greeting: "hello" } });
  try {
    const r = await plugin.request({ path: "/blocked" });
    assert.equal(r.responded?.status, 403);
  } finally {
    await plugin.close();
  }
});
`,
    "tsconfig.json": JSON.stringify({
      compilerOptions: { target: "ES2022", module: "ESNext", moduleResolution: "Bundler", strict: true, noEmit: true, skipLibCheck: true, types: ["node"] },
      include: ["src", "test"],
    }, null, 2) + "\n",
    "package.json": JSON.stringify({
      name, version: "0.1.0", private: true, type: "module",
      scripts: { build: "weir plugin build", test: "weir plugin test", pack: `weir plugin pack src/plugin.ts --out ${name}.weirpkg --publisher YOUR-NAME` },
    }, null, 2) + "\n",
    "README.md": `# ${name}

A Weir plugin. \`src/plugin.ts\` is the plugin; \`test/\` runs it in the real sandbox.

    weir plugin build      # type-check against the SDK (typescript, @types/node) and bundle to dist/plugin.js
    weir plugin test       # run test/*.test.ts (node:test) with weir/sdk/testing
    weir plugin pack src/plugin.ts --out ${name}.weirpkg --publisher YOUR-NAME
    weir plugin sign ${name}.weirpkg --key keys/publisher.key

Use it from a Weir config:

\`\`\`yaml
routes:
  - match: { path: /api }
    upstream: http://127.0.0.1:9001
    plugins:
      - use: ./${name}.weirpkg      # or ./src/plugin.ts while developing
        config: { greeting: hello }
\`\`\`
`,
    ".gitignore": "dist/\n.weir-test/\n*.weirpkg\nkeys/\n",
  };
  for (const [f, text] of Object.entries(files)) writeFileSync(join(root, f), text);
  return root;
}

/**
 * Where a package is, looked up from the plugin project first, then from this Weir (a repository
 * checkout has its dev dependencies; an installed Weir finds what its user installed beside it).
 */
function findPackageDir(project: string, name: string): string | null {
  for (const from of [join(project, "package.json"), join(weirRoot(), "package.json")]) {
    try {
      return dirname(createRequire(from).resolve(`${name}/package.json`));
    } catch { /* not there: try the next place */ }
  }
  return null;
}

/**
 * tsconfig paths that point `weir/sdk` and `weir/sdk/testing` at this Weir: its sources in a
 * repository checkout, the declarations it ships once installed as a package.
 */
function typecheckConfig(project: string, typesNode: string): string {
  const root = weirRoot();
  const testingSource = join(root, "core", "plugin-host", "testing.ts");
  const fromSources = existsSync(testingSource);
  const paths: Record<string, string[]> = {
    "weir/sdk": [join(root, "sdk", "index.ts")],
    "weir/sdk/testing": [fromSources ? testingSource : join(root, "dist", "core", "plugin-host", "testing.d.ts")],
  };
  // The sources import isolated-vm's types under its plain name; the checkout has them under the
  // per-Node-line aliases (see core/plugin-host/isolated-vm-line.ts), as its own tsconfig maps them.
  if (fromSources) paths["isolated-vm"] = ["isolated-vm-6", "isolated-vm-5"].map((p) => join(root, "node_modules", p, "isolated-vm.d.ts"));
  const file = join(project, ".weir-tsconfig.json");
  writeFileSync(file, JSON.stringify({
    extends: "./tsconfig.json",
    compilerOptions: { types: ["node"], typeRoots: [dirname(typesNode)], paths },
  }, null, 2));
  return file;
}

export async function buildPluginProject(project: string): Promise<{ source: string; output: string; bytes: number }> {
  const source = join(project, "src", "plugin.ts");
  if (!existsSync(source)) throw new Error(`${source} not found (is ${project} a plugin project from weir plugin new?)`);
  const typescript = findPackageDir(project, "typescript");
  const typesNode = findPackageDir(project, "@types/node");
  if (!typescript || !typesNode) {
    throw new Error(`cannot type-check ${project}: ${typescript ? "" : "typescript "}${typesNode ? "" : "@types/node "}not found beside the project or Weir (npm install -D typescript @types/node)`);
  }
  const bin = (JSON.parse(readFileSync(join(typescript, "package.json"), "utf8")) as { bin: Record<string, string> }).bin.tsc!;
  const cfg = typecheckConfig(project, typesNode);
  try {
    const r = spawnSync(process.execPath, [join(typescript, bin), "-p", cfg, "--noEmit"], { cwd: project, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`type errors:\n${(r.stdout + r.stderr).trim()}`);
  } finally {
    rmSync(cfg, { force: true });
  }
  const compiled = await compilePlugin(source);
  mkdirSync(join(project, "dist"), { recursive: true });
  const output = join(project, "dist", "plugin.js");
  writeFileSync(output, compiled.code);
  return { source, output, bytes: compiled.code.length };
}

export async function testPluginProject(project: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const testDir = join(project, "test");
  const tests = existsSync(testDir) ? readdirSync(testDir).filter((f) => /\.test\.(ts|js|mjs)$/.test(f) && statSync(join(testDir, f)).isFile()) : [];
  if (tests.length === 0) { err.write(`no test/*.test.ts in ${project}\n`); return 1; }
  const root = weirRoot();
  const testing = join(root, "dist", "core", "plugin-host", "testing.js");
  const outDir = join(project, ".weir-test");
  rmSync(outDir, { recursive: true, force: true });
  await build({
    entryPoints: tests.map((t) => join(testDir, t)),
    outdir: outDir,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outExtension: { ".js": ".mjs" },
    alias: { "weir/sdk/testing": testing, "weir/sdk": join(root, "sdk", "index.ts") },
    external: [testing],
    logLevel: "warning",
  });
  const files = readdirSync(outDir).filter((f) => f.endsWith(".mjs")).map((f) => join(outDir, f));
  // TAP on every Node line: node:test's default reporter for a pipe is TAP on Node 20 and "spec"
  // from Node 22 on, and scripts read the `# pass N` / `# fail N` lines.
  const r = spawnSync(process.execPath, ["--no-node-snapshot", "--test", "--test-reporter=tap", ...files], { cwd: project, encoding: "utf8" });
  out.write(r.stdout);
  err.write(r.stderr);
  rmSync(outDir, { recursive: true, force: true });
  return r.status ?? 1;
}
