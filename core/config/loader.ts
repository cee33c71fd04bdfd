/**
 * Reads a config file (YAML or JSON, same schema), expands `${VAR}` references and validates it,
 * reporting every problem as `FILE: path.to.key: message`. Semantic checks that need the whole
 * config (an upstream a route names, a target URL) happen in compile.ts, in the same format.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Ajv, type ErrorObject } from "ajv";
import jsYaml from "js-yaml";
import { parseDocument } from "yaml";
import { ConfigError, type ConfigProblem } from "../errors.js";
import { expandEnv } from "./env-expand.js";
import { configSchema, type WeirConfig } from "./schema.js";
import { similar } from "./did-you-mean.js";

const ajv = new Ajv({ allErrors: true, verbose: true, strict: false });
const validate = ajv.compile<WeirConfig>(configSchema);

/** Reads and validates a config file; throws ConfigError listing every problem. */
export function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env, options: { reload?: boolean } = {}): WeirConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError([{ file, path: "", message: `cannot read the config file: ${(err as Error).message}` }]);
  }
  // An empty file is a valid config at start (every key has a default), but on a reload it is
  // almost always a file caught between its truncation and its write (an editor, `cat >`, a
  // config tool): taking it would drop every route. The running config keeps serving instead.
  if (options.reload && text.trim() === "")
    throw new ConfigError([{ file, path: "", message: "the config file is empty (caught while being written?); not reloaded" }]);
  return parseConfigText(text, file, env);
}

/** Parses and validates config text; `file` is used in messages and to pick JSON or YAML. */
export function parseConfigText(text: string, file: string, env: NodeJS.ProcessEnv = process.env): WeirConfig {
  const { expanded, problems } = configStages(text, file, env);
  if (problems.length) throw new ConfigError(problems);
  return resolvePaths(expanded as WeirConfig, file);
}

/**
 * For `weir validate`, which reports every problem of every stage at once: the file's problems of
 * form (parse, environment, schema), and the config with every invalid part cut out, so that the
 * checks that need the whole config can still run on the rest. `config` is null when the file
 * cannot be read or parsed (nothing else can be checked). `cut` lists what was removed, as key
 * segments (`["upstreams", "api"]`).
 */
export function loadForValidation(file: string, env: NodeJS.ProcessEnv = process.env): { config: WeirConfig | null; problems: ConfigProblem[]; cut: string[][] } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    return { config: null, problems: [{ file, path: "", message: `cannot read the config file: ${(err as Error).message}` }], cut: [] };
  }
  let stages: ReturnType<typeof configStages>;
  try {
    stages = configStages(text, file, env);
  } catch (err) {
    if (err instanceof ConfigError) return { config: null, problems: err.problems, cut: [] };
    throw err;
  }
  const { expanded, problems } = stages;
  if (!problems.length) return { config: resolvePaths(expanded as WeirConfig, file), problems, cut: [] };
  const cut: string[][] = [];
  let rest = structuredClone(expanded);
  // Each cut may leave its parent without a required key: validate and cut again until what is
  // left is valid (every round cuts closer to the root, and the empty config is valid).
  for (let round = 0; round < 32; round++) {
    const left = errorsBesidesHoles(rest);
    if (left.length === 0) return { config: resolvePaths(rest as WeirConfig, file), problems, cut };
    rest = cutInvalid(rest, left, cut);
  }
  return { config: null, problems, cut };
}

/** The schema errors of `config`, except those about the holes cutInvalid left in lists. */
function errorsBesidesHoles(config: unknown): ErrorObject[] {
  if (validate(config)) return [];
  return (validate.errors ?? []).filter((e) => {
    const parts = e.instancePath.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
    let parent: unknown = null;
    let node: unknown = config;
    for (const part of parts) { parent = node; node = (node as Record<string, unknown> | undefined)?.[part]; }
    return !(Array.isArray(parent) && node === undefined);
  });
}

/** Parse, expand `${VAR}`, validate: the config (expanded) and the problems of form found. Throws ConfigError when the text cannot be parsed. */
function configStages(text: string, file: string, env: NodeJS.ProcessEnv): { expanded: unknown; problems: ConfigProblem[] } {
  let raw: unknown;
  if (file.endsWith(".json")) {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError([{ file, path: "", message: `invalid JSON: ${withLineOf(text, (err as Error).message)}` }]);
    }
  } else {
    raw = parseYaml(text, file);
  }
  if (raw === null || raw === undefined) raw = {};
  const problems: ConfigProblem[] = [];
  const envProblems: { path: string; message: string }[] = [];
  const expanded = expandEnv(raw, env, envProblems);
  for (const p of envProblems) problems.push({ file, ...p });
  // A missing variable expands to "", which the schema would then also refuse: one line is enough.
  const unset = new Set(envProblems.map((p) => p.path));
  if (!validate(expanded)) problems.push(...schemaProblems(validate.errors ?? [], file).filter((p) => !unset.has(p.path)));
  return { expanded, problems };
}

/**
 * Removes what each schema error points at: an unknown key itself; for a missing required key,
 * the object that lacks it; otherwise the offending value. List items become holes, so that the
 * items after them keep their index (and their key paths).
 */
function cutInvalid(config: unknown, errors: ErrorObject[], cut: string[][]): unknown {
  const targets = new Set<string>();
  for (const e of errors) {
    if (e.keyword === "additionalProperties") targets.add(`${e.instancePath}/${(e.params as { additionalProperty: string }).additionalProperty.replace(/~/g, "~0").replace(/\//g, "~1")}`);
    else targets.add(e.instancePath);
  }
  for (const pointer of [...targets].sort((a, b) => b.length - a.length)) {
    if (pointer === "") return {};
    const parts = pointer.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
    let node = config as Record<string, unknown> | unknown[] | undefined;
    for (const part of parts.slice(0, -1)) node = (node as Record<string, unknown> | undefined)?.[part] as typeof node;
    const last = parts[parts.length - 1]!;
    if (node === null || typeof node !== "object" || !(last in node)) continue;
    delete (node as Record<string, unknown>)[last];
    cut.push(parts);
  }
  return config;
}

/**
 * Relative file paths in the config are relative to the config file (as plugin paths are), not to
 * wherever weir happened to be started from.
 */
function resolvePaths(config: WeirConfig, file: string): WeirConfig {
  const base = dirname(resolve(file));
  const listeners = config.listen === undefined ? [] : Array.isArray(config.listen) ? config.listen : [config.listen];
  for (const l of listeners) if (l.tls) l.tls = { cert: resolve(base, l.tls.cert), key: resolve(base, l.tls.key) };
  return config;
}

/** `${VAR}` is plain text in block style but breaks a flow map or list (`{ port: ${PORT} }`). */
function yamlHint(text: string, line: number | undefined): string {
  const source = line === undefined ? undefined : text.split("\n")[line - 1];
  return source?.includes("${") ? ' (inside { } or [ ], put a ${VAR} reference in quotes: "${VAR}")' : "";
}

/** V8 names a JSON error's offset ("at position 22"); people look for a line and a column. */
function withLineOf(text: string, message: string): string {
  // Node 22 and 24 (their V8) already end the message with "(line L column C)", Node 20 gives only
  // the position: one form on every Node line.
  const bare = message.replace(/\s*\(line \d+ column \d+\)$/, "");
  const m = /at position (\d+)/.exec(bare);
  if (!m) return message;
  const before = text.slice(0, Number(m[1]));
  const line = before.split("\n").length;
  return `${bare} (line ${line}, column ${before.length - before.lastIndexOf("\n")})`;
}

/** "/routes/0/match/path" -> "routes[0].match.path" */
function keyPath(pointer: string): string {
  let out = "";
  for (const part of pointer.split("/").slice(1)) {
    const seg = part.replace(/~1/g, "/").replace(/~0/g, "~");
    if (/^[0-9]+$/.test(seg)) out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

/** The JSON type of a value as a schema's `type` names it ("object", "array", "string", ...). */
function jsonType(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

/**
 * For a failed anyOf whose value is an object or a list: the one branch that takes that shape, or
 * -1. Its own errors name the exact key (`listen.port`, `admin.tokn` with "did you mean"), which
 * says more than the anyOf's one-line description.
 */
function structuralBranch(e: ErrorObject): number {
  const type = jsonType(e.data);
  if (type !== "object" && type !== "array") return -1;
  const branches = (e.schema ?? []) as { type?: unknown; const?: unknown }[];
  const claims = branches.map((b) => (typeof b.type === "string" ? b.type : "const" in b ? jsonType(b.const) : null) === type);
  return claims.filter(Boolean).length === 1 ? claims.indexOf(true) : -1;
}

function under(e: ErrorObject, schemaPrefix: string, instancePath: string): boolean {
  return e.schemaPath.startsWith(schemaPrefix) && (e.instancePath === instancePath || e.instancePath.startsWith(instancePath + "/"));
}

function schemaProblems(errors: ErrorObject[], file: string): ConfigProblem[] {
  // An anyOf failure is reported once, with its description, instead of one line per branch;
  // unless the value is an object or list that only one branch accepts, then by that branch's errors.
  const anyOfs = errors.filter((e) => e.keyword === "anyOf").map((e) => ({ e, branch: structuralBranch(e) }));
  const hidden = (e: ErrorObject) => anyOfs.some((a) =>
    (a.e === e && a.branch >= 0) ||
    (under(e, a.e.schemaPath + "/", a.e.instancePath) && !(a.branch >= 0 && under(e, `${a.e.schemaPath}/${a.branch}/`, a.e.instancePath))));
  const seen = new Set<string>();
  const out: ConfigProblem[] = [];
  for (const e of errors) {
    if (hidden(e)) continue;
    let path = keyPath(e.instancePath);
    let message: string;
    switch (e.keyword) {
      case "anyOf":
        message = `must be ${(e.parentSchema as { description?: string })?.description ?? "one of the allowed forms"}`;
        break;
      case "additionalProperties": {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        const known = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
        path = path ? `${path}.${key}` : key;
        const near = known.find((k) => similar(k, key));
        message = `unknown key${near ? ` (did you mean "${near}"?)` : ""}; expected one of: ${known.join(", ")}`;
        break;
      }
      case "required":
        path = (path ? path + "." : "") + (e.params as { missingProperty: string }).missingProperty;
        message = "is required";
        break;
      case "enum":
        message = `must be one of: ${((e.params as { allowedValues: unknown[] }).allowedValues).map(String).join(", ")}`;
        break;
      case "pattern":
        message = patternMessage(path, e);
        break;
      case "propertyNames":
        message = "names may use only letters, digits, '.', '_' and '-'";
        break;
      default:
        message = e.message ?? "is invalid";
    }
    const line = `${path}\u0000${message}`;
    if (e.keyword === "pattern" && errors.some((o) => o.keyword === "propertyNames" && e.instancePath.startsWith(o.instancePath))) continue;
    if (seen.has(line)) continue;
    seen.add(line);
    out.push({ file, path, message });
  }
  return out;
}

function patternMessage(path: string, e: ErrorObject): string {
  if (path.endsWith("hashOn")) return 'must be "header:NAME", "cookie:NAME", "ip" or "path"';
  if (path.endsWith(".path")) return 'must start with "/"';
  if (path.endsWith("redis")) return 'must be a redis:// or rediss:// URL';
  if (path.endsWith("methods") || /methods\[\d+\]$/.test(path)) return "must be an upper-case HTTP method such as GET";
  return `must match ${(e.params as { pattern: string }).pattern}`;
}

/**
 * YAML through js-yaml (core schema: YAML 1.2 types, no timestamps, duplicate keys refused),
 * about 10x faster than the `yaml` package on a 1,000-route file, which matters for reloads.
 * When js-yaml refuses a file, the `yaml` package parses it again for its clearer messages.
 */
function parseYaml(text: string, file: string): unknown {
  try {
    return jsYaml.load(text, { schema: jsYaml.CORE_SCHEMA, filename: file });
  } catch {
    // fall through to the detailed parser
  }
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    // After the first syntax error the parser mostly reports its echoes (one broken flow map gave
    // twenty lines), so we show that one, plus duplicate keys, which are independent mistakes.
    const first = doc.errors.find((e) => e.code !== "DUPLICATE_KEY");
    const shown = doc.errors.filter((e) => e.code === "DUPLICATE_KEY" || e === first);
    throw new ConfigError(shown.map((e) => ({ file, path: "", message: `invalid YAML: ${e.message.split("\n")[0]!.replace(/:$/, "")}${yamlHint(text, e.linePos?.[0]?.line)}` })));
  }
  return doc.toJS();
}
