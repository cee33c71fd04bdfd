/**
 * Compiles a plugin's TypeScript into one JavaScript bundle for the sandbox with esbuild:
 * relative imports are bundled, `weir/sdk` resolves to the SDK source (which has no imports), and
 * Node built-ins are refused at build time with a clear message (there is no Node in the sandbox).
 */
import { build, type Message } from "esbuild";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { existsSync } from "node:fs";
import { resolve } from "node:path";

export interface CompiledPlugin {
  file: string;
  code: string;
  /** SHA-256 of the code: two compiles with the same hash are the same plugin. */
  hash: string;
  /** Every local file the bundle was built from (watched for hot reload). */
  inputs: string[];
  /** For a .weirpkg: the manifest the package states (checked against the loaded bundle). */
  package?: import("../marketplace/package-format.js").PackageManifest;
}

/** The SDK source, found both from core/ (ts) and dist/core/ (js) layouts. */
function sdkEntry(): string {
  const candidates = ["../../sdk/index.ts", "../../../sdk/index.ts"].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

export class PluginCompileError extends Error {
  constructor(readonly file: string, message: string) {
    super(message);
  }
}

export async function compilePlugin(file: string): Promise<CompiledPlugin> {
  const abs = resolve(file);
  if (!existsSync(abs)) throw new PluginCompileError(abs, `plugin file not found: ${abs}`);
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
    });
  } catch (err) {
    const errors = (err as { errors?: Message[] }).errors ?? [];
    const first = errors[0];
    const where = first?.location ? `${first.location.file}:${first.location.line}:${first.location.column}: ` : "";
    const text = first?.text ?? (err as Error).message;
    const hint = /Could not resolve "(node:)?(fs|path|http|https|net|child_process|crypto|os|process)/.test(text)
      ? " (plugins run in a sandbox without Node built-ins; use the capabilities of ctx instead)" : "";
    throw new PluginCompileError(abs, `cannot compile the plugin: ${where}${text}${hint}`);
  }
  const code = result.outputFiles[0]!.text;
  const inputs = Object.keys(result.metafile.inputs).map((p) => resolve(p)).filter((p) => !p.includes("/node_modules/"));
  return { file: abs, code, hash: createHash("sha256").update(code).digest("hex"), inputs };
}
