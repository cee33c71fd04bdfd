/**
 * The docs say what Weir does: every key of the config schema is described in
 * docs/configuration.md, and every Weir config shown in the README, docs/, the built-ins' READMEs
 * and the examples' READMEs passes the real `weir validate`. A block that does not stand alone
 * (it names files, upstreams or routes defined elsewhere, or it is abbreviated) says so in its
 * info string, ```yaml fragment, and then only has to parse.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdirSync, readFileSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import jsYaml from "js-yaml";
import { configSchema } from "../../core/config/schema.js";
import { ROOT } from "../support/fixtures.js";
import { tempDir } from "../support/weir.js";

// ---- every schema key in docs/configuration.md --------------------------------------------

interface Schema { properties?: Record<string, Schema>; items?: Schema; anyOf?: Schema[]; additionalProperties?: Schema | boolean }

/** Every key of the schema, as its path of key names (list items and map entries add no name). */
function schemaKeys(s: Schema, path: string[] = [], out: string[][] = []): string[][] {
  for (const [k, v] of Object.entries(s.properties ?? {})) { out.push([...path, k]); schemaKeys(v, [...path, k], out); }
  if (s.items) schemaKeys(s.items, path, out);
  for (const b of s.anyOf ?? []) schemaKeys(b, path, out);
  if (s.additionalProperties && typeof s.additionalProperties === "object") schemaKeys(s.additionalProperties, path, out);
  return out;
}

const configDoc = readFileSync(join(ROOT, "docs", "configuration.md"), "utf8");
const spans = (text: string) => [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!.replace(/\[\]/g, ""));
/** Code spans that define a key: a table row's first cell, or a heading. */
const defining = new Set([
  ...[...configDoc.matchAll(/^\| ([^|\n]+) \|/gm)].flatMap((m) => spans(m[1]!)),
  ...[...configDoc.matchAll(/^#+ (.+)$/gm)].flatMap((m) => spans(m[1]!)),
]);
const anywhere = new Set(spans(configDoc));

/** Described: a table row or heading names the key (or a dotted tail of its path, or a key under it), or prose names its dotted path. */
function described(path: string[]): boolean {
  for (let i = path.length - 1; i >= 0; i--) {
    const tail = path.slice(i).join(".");
    if (defining.has(tail) || [...defining].some((d) => d.startsWith(tail + "."))) return true;
    if (i < path.length - 1 && anywhere.has(tail)) return true;
  }
  return false;
}

const Keys = suite("docs/configuration.md describes the schema");

Keys("every key of the config schema is described in docs/configuration.md", () => {
  const keys = schemaKeys(configSchema as Schema);
  assert.ok(keys.length > 90, `${keys.length} keys found`);
  const missing = [...new Set(keys.filter((k) => !described(k)).map((k) => k.join(".")))];
  assert.equal(missing, [], `not described in docs/configuration.md: ${missing.join(", ")}`);
});

Keys.run();

// ---- every config in the docs passes weir validate ----------------------------------------

interface Block { where: string; lang: "yaml" | "json"; fragment: boolean; text: string }

function docFiles(): string[] {
  const md = (dir: string) => (existsSync(join(ROOT, dir)) ? readdirSync(join(ROOT, dir)).filter((f) => f.endsWith(".md")).map((f) => join(dir, f)) : []);
  const readmes = (dir: string) => readdirSync(join(ROOT, dir), { withFileTypes: true }).filter((d) => d.isDirectory() && existsSync(join(ROOT, dir, d.name, "README.md"))).map((d) => join(dir, d.name, "README.md"));
  return ["README.md", ...md("docs"), "plugins/README.md", ...readmes("plugins"), ...readmes("examples")];
}

function blocks(file: string): Block[] {
  const text = readFileSync(join(ROOT, file), "utf8");
  return [...text.matchAll(/^```(yaml|yml|json)([^\n]*)\n([\s\S]*?)^```/gm)].map((m) => ({
    where: `${file}:${text.slice(0, m.index).split("\n").length}`,
    lang: m[1] === "json" ? "json" : "yaml",
    fragment: m[2]!.trim().split(/\s+/).includes("fragment"),
    text: m[3]!,
  }));
}

const TOP_LEVEL = new Set(Object.keys((configSchema as Schema).properties ?? {}));

function parse(b: Block): unknown {
  return b.lang === "json" ? JSON.parse(b.text) : jsYaml.load(b.text, { schema: jsYaml.CORE_SCHEMA });
}

/**
 * A Weir config: a mapping at least half of whose keys are the config's top-level keys (an error
 * body, a log line or a package manifest has none or few; a config with a typo still counts).
 */
function isConfig(value: unknown): boolean {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.filter((k) => TOP_LEVEL.has(k)).length * 2 >= keys.length;
}

async function validate(file: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [join(ROOT, "bin", "weir.js"), "validate", "-c", file], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  let output = "";
  child.stdout.on("data", (d) => (output += d));
  child.stderr.on("data", (d) => (output += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { code, output };
}

const Blocks = suite("the configs in the docs");

Blocks("every yaml and json block parses; a fragment says so in its info string", () => {
  const all = docFiles().flatMap(blocks);
  assert.ok(all.length > 20, `${all.length} blocks found`);
  const broken: string[] = [];
  for (const b of all) {
    try { parse(b); } catch (err) { broken.push(`${b.where}: ${(err as Error).message.split("\n")[0]}`); }
  }
  const unmarked = broken.filter((l) => !all.find((b) => l.startsWith(b.where + ":"))!.fragment);
  assert.equal(unmarked, [], "blocks that do not parse (mark an abbreviated one ```yaml fragment)");
});

Blocks("every Weir config in the README, docs/, plugins/ and examples/ passes weir validate", async () => {
  const configs = docFiles().flatMap(blocks).filter((b) => !b.fragment && isConfig(parse(b)));
  assert.ok(configs.length >= 10, `${configs.length} configs found`);
  const dir = tempDir("weir-doc-configs-");
  const failed: string[] = [];
  const queue = configs.map((b, i) => ({ b, file: join(dir, `block-${i}.${b.lang}`) }));
  // Two at a time: each is a real `weir validate` (plugins load into real isolates).
  await Promise.all([0, 1].map(async () => {
    for (let next = queue.shift(); next; next = queue.shift()) {
      writeFileSync(next.file, next.b.text);
      const r = await validate(next.file);
      if (r.code !== 0 || r.output.trim() !== "ok") failed.push(`${next.b.where} (mark it \`\`\`${next.b.lang} fragment if it does not stand alone):\n${r.output.trim()}`);
    }
  }));
  assert.equal(failed, [], failed.join("\n"));
});

Blocks.run();
