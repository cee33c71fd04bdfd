/**
 * Compiles a plugin's TypeScript into one JavaScript bundle for the sandbox with esbuild:
 * relative imports are bundled, `weir/sdk` resolves to the SDK source (which has no imports), and
 * Node built-ins are refused at build time with a clear message (there is no Node in the sandbox).
 */
import { build, type Loader, type Message } from "esbuild";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { existsSync, readFileSync, realpathSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { extname, resolve } from "node:path";
import { ErrorCodes, WeirError } from "../errors.js";

export interface CompiledPlugin {
  file: string;
  code: string;
  /** SHA-256 of the code: two compiles with the same hash are the same plugin. */
  hash: string;
  /** Every local file the bundle was built from (watched for hot reload). */
  inputs: string[];
  /**
   * What the bundle was built from: the SHA-256 of each input's text, and the real path the entry
   * led to (a symlink swapped under it changes that). `sourcesChanged` compares them with the disk.
   */
  sources?: { entry: string; digests: Record<string, string> };
  /** For a .weirpkg: the manifest the package states (checked against the loaded bundle). */
  package?: import("../marketplace/package-format.js").PackageManifest;
}

/** The SDK source, found both from core/ (ts) and dist/core/ (js) layouts. */
function sdkEntry(): string {
  const candidates = ["../../sdk/index.ts", "../../../sdk/index.ts"].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

export class PluginCompileError extends WeirError {
  constructor(readonly file: string, message: string) {
    super(ErrorCodes.PLUGIN_COMPILE, message);
  }
}

export async function compilePlugin(file: string): Promise<CompiledPlugin> {
  const abs = resolve(file);
  if (!existsSync(abs)) throw new PluginCompileError(abs, `plugin file not found: ${abs}`);
  // Read before the build: a swap during it makes the bundle look stale, never fresh.
  const entry = realPathOf(abs) ?? abs;
  const digests: Record<string, string> = {};
  let result;
  try {
    result = await build({
      entryPoints: [abs],
      bundle: true,
      write: false,
      format: "iife",
      globalName: "__weirPluginModule",
      platform: "neutral",
      target: "es2022",
      mainFields: ["module", "main"],
      alias: { "weir/sdk": sdkEntry() },
      metafile: true,
      logLevel: "silent",
      sourcemap: false,
      charset: "utf8",
      plugins: [digestInputs(digests)],
    });
  } catch (err) {
    const errors = (err as { errors?: Message[] }).errors ?? [];
    const first = errors[0];
    // esbuild names files relative to the working directory: an absolute path reads the same
    // whatever directory Weir was started from.
    const where = first?.location ? `${resolve(first.location.file)}:${first.location.line}:${first.location.column}: ` : "";
    const text = first?.text ?? (err as Error).message;
    const hint = /Could not resolve "(node:)?(fs|path|http|https|net|child_process|crypto|os|process)/.test(text)
      ? " (plugins run in a sandbox without Node built-ins; use the capabilities of ctx instead)" : "";
    throw new PluginCompileError(abs, `cannot compile the plugin: ${where}${text}${hint}`);
  }
  const code = result.outputFiles[0]!.text;
  const inputs = Object.keys(result.metafile.inputs).map((p) => resolve(p)).filter((p) => !p.includes("/node_modules/"));
  const own: Record<string, string> = {};
  for (const input of inputs) own[input] = digests[input] ?? "";
  return { file: abs, code, hash: createHash("sha256").update(code).digest("hex"), inputs, sources: { entry, digests: own } };
}

const LOADERS: Record<string, Loader> = { ".ts": "ts", ".mts": "ts", ".cts": "ts", ".tsx": "tsx", ".js": "js", ".mjs": "js", ".cjs": "js", ".jsx": "jsx", ".json": "json" };

/**
 * Loads each source file itself and keeps the digest of exactly the text esbuild compiled: a
 * digest read after the build could already be of a newer save, and that save would then look
 * compiled when it is not.
 */
function digestInputs(digests: Record<string, string>) {
  return {
    name: "weir-source-digests",
    setup(b: { onLoad(o: { filter: RegExp }, cb: (a: { path: string }) => Promise<{ contents: Buffer; loader: Loader } | undefined>): void }) {
      b.onLoad({ filter: /.*/ }, async ({ path }) => {
        const loader = LOADERS[extname(path)];
        if (loader === undefined) return undefined;
        const contents = await readFile(path);
        digests[resolve(path)] = createHash("sha256").update(contents).digest("hex");
        return { contents, loader };
      });
    },
  };
}

/**
 * Whether the files a bundle was built from differ on disk now (edited, replaced, removed, or the
 * entry's symlink pointing elsewhere): a cached compile is used only while they do not.
 */
export function sourcesChanged(c: CompiledPlugin): boolean {
  if (!c.sources) return false;
  if (realPathOf(c.file) !== c.sources.entry) return true;
  return Object.entries(c.sources.digests).some(([path, digest]) => digestOf(path) !== digest);
}

function digestOf(path: string): string | null {
  try {
    return createHash("sha256").update(readFileSync(path)).digest("hex");
  } catch {
    return null;
  }
}

function realPathOf(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}
