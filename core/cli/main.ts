/**
 * The `weir` command line: `start`, `validate` and `plugin <verb>`.
 * Returns the exit code instead of calling process.exit, so tests can call it in-process.
 */
import { parseArgs } from "node:util";
import { checkConfig } from "../config/compile.js";
import { loadForValidation } from "../config/loader.js";
import type { WeirConfig } from "../config/schema.js";
import { ConfigError, formatProblem, WeirError, type ConfigProblem } from "../errors.js";
import type { WeirRuntime } from "../server/runtime.js";
import { resolve } from "node:path";
import { workersInFile } from "../cluster/worker-count.js";

// The runtime (undici, the plugin host, isolated-vm) is imported only by the commands that run it,
// so `--help` and a config without plugins validate fast and need nothing but the config code.
const runtime = () => import("../server/runtime.js");

const USAGE = `Usage: weir <command> [options]

Commands:
  start     [-c FILE]   start the proxy
  validate  [-c FILE]   check a config file; prints "ok", or every problem, one per line
  plugin    <verb>      plugin tools: new, build, test, pack, keygen, sign, verify, install
                        (weir plugin --help)

Options:
  -c, --config FILE     the config file, YAML or JSON (default: ./weir.yaml)
  -h, --help            show this help
  -v, --version         print the version
`;

export async function main(argv: string[], out = process.stdout, err = process.stderr): Promise<number> {
  if (argv[0] === "plugin") {
    const { pluginCommand } = await import("./plugin-commands.js");
    return pluginCommand(argv.slice(1), out, err);
  }
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { config: { type: "string", short: "c" }, help: { type: "boolean", short: "h" }, version: { type: "boolean", short: "v" } },
    });
  } catch (e) {
    err.write(`weir: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.version) { out.write(`weir ${(await runtime()).VERSION}\n`); return 0; }
  const [command, ...rest] = positionals;
  if (values.help || command === "help" || command === undefined) {
    (command === undefined && !values.help ? err : out).write(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  if (rest.length) { err.write(`weir: unexpected argument "${rest[0]}"\n\n${USAGE}`); return 2; }
  const file = values.config ?? "weir.yaml";

  switch (command) {
    case "validate":
      return validate(file, out, err);
    case "start":
      return start(file, out, err);
    default:
      err.write(`weir: unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

/**
 * Every problem of every stage, in one run: form (parse, environment, schema), then the checks
 * that need the whole config and the plugins (compiled and loaded into real isolates, their config
 * checked against their own schema, as start and reload do), both on what is left once the parts
 * with problems of form are cut out. Only a file that cannot be read or parsed stops at once.
 */
async function validate(file: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const { config, problems, cut } = loadForValidation(file);
  if (config !== null) {
    // An upstream cut for its own problems is still defined: a route naming it is not wrong too.
    const cutUpstreams = new Set(cut.filter((c) => c[0] === "upstreams" && c.length === 2).map((c) => c[1]!));
    const echo = (p: ConfigProblem) => [...cutUpstreams].some((name) => p.message.startsWith(`unknown upstream "${name}"`));
    problems.push(...checkConfig(config, file).filter((p) => !echo(p)));
    if (config.plugins?.length || config.routes?.some((r) => r?.plugins?.length)) problems.push(...await pluginProblems(config, file));
  }
  if (problems.length) { for (const p of problems) err.write(formatProblem(p) + "\n"); return 1; }
  out.write("ok\n");
  return 0;
}

async function pluginProblems(config: WeirConfig, file: string): Promise<ConfigProblem[]> {
  const [{ PluginHost }, { MemoryStore }, { createLogger }] = await Promise.all([
    import("../plugin-host/plugin-host.js"), import("../store/memory-store.js"), import("../log/logger.js"),
  ]);
  const store = new MemoryStore();
  const host = new PluginHost(createLogger("silent"), () => store, { watch: false });
  try {
    const r = await host.prepare(config, resolve(file));
    for (const slot of r.slots.values()) slot.current.dispose();
    return r.problems.map((p) => ({ ...p, file }));
  } finally {
    await host.close();
    await store.close();
  }
}

async function start(file: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const workers = workersInFile(file);
  if (workers > 1) return (await import("../cluster/primary.js")).runPrimary(file, workers, out, err);
  let rt: WeirRuntime;
  try {
    rt = await (await runtime()).WeirRuntime.start({ configFile: file, watchConfig: true });
  } catch (e) {
    // The file named as the user gave it, as validate does (the runtime works with its absolute path).
    if (e instanceof ConfigError) { for (const p of e.problems) err.write(formatProblem(p.file === resolve(file) ? { ...p, file } : p) + "\n"); return 1; }
    if (e instanceof WeirError) { err.write(`weir: ${e.message} [${e.code}]\n`); return 1; }
    throw e;
  }
  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      out.write(`weir: ${signal} received, finishing in-flight requests\n`);
      rt.stop().then(() => { out.write("weir: stopped\n"); resolveExit(0); }, (e) => { err.write(`weir: ${e}\n`); resolveExit(1); });
    };
    // Handlers first, then the lines a supervisor waits for: a signal sent as soon as it reads
    // "listening" must find them installed (it used to kill the process outright).
    process.on("SIGTERM", () => stop("SIGTERM"));
    process.on("SIGINT", () => stop("SIGINT"));
    const { listen, admin } = rt.addresses();
    for (const url of listen) out.write(`weir: listening on ${url}\n`);
    if (admin) out.write(`weir: admin API on ${admin}\n`);
  });
}
