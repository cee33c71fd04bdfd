/**
 * The whole tree type-checks (strict, noUncheckedIndexedAccess, noUnusedLocals): esbuild only
 * strips types, so without this a type error would build, pass other tests and land.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const Typecheck = suite("typecheck");

Typecheck("tsc --noEmit -p . reports no error", () => {
  const require = createRequire(join(root, "package.json"));
  const pkg = require("typescript/package.json") as { bin: Record<string, string> };
  const tsc = join(dirname(require.resolve("typescript/package.json")), pkg.bin.tsc!);
  const r = spawnSync(process.execPath, [tsc, "--noEmit", "-p", root], { cwd: root, encoding: "utf8", timeout: 120_000 });
  assert.is(r.status, 0, `tsc reported:\n${r.stdout}${r.stderr}`);
});

Typecheck.run();
