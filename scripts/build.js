#!/usr/bin/env node
// Transpiles every TypeScript source of the project to dist/ (one file in, one file out, ESM).
// esbuild only strips types; `npm run typecheck` is where tsc checks them. We transpile instead of
// running through a loader so that `weir` starts fast and the request path runs plain JS.
import { build } from "esbuild";
import { readdirSync, statSync, existsSync, rmSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const roots = ["core", "sdk", "plugins", "examples", "test", "bench"];

function collect(dir, out) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

const entryPoints = roots.flatMap((r) => collect(join(root, r), []));
const dist = join(root, "dist");

if (process.argv.includes("--if-stale") && existsSync(dist)) {
  const built = statSync(dist).mtimeMs;
  if (!entryPoints.some((f) => statSync(f).mtimeMs > built)) process.exit(0);
}

// --clean (npm pack): start from an empty dist/, so no output of a deleted source is published.
if (process.argv.includes("--clean")) rmSync(dist, { recursive: true, force: true });

await build({
  entryPoints,
  outdir: dist,
  outbase: root,
  format: "esm",
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  logLevel: "warning",
});
console.error(`weir: built ${entryPoints.length} files into ${relative(process.cwd(), dist) || "."}`);
