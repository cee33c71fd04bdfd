/**
 * Type tests, with the real tsc: a plugin type-checks against the SDK as its author's project
 * would see it (`weir/sdk` mapped to sdk/index.ts), and the SDK's types reject a wrong config type.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { execFile } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, fixturePath } from "../support/fixtures.js";
import { tempDir } from "../support/weir.js";

const TSC = join(ROOT, "node_modules", ".bin", "tsc");

function tsc(project: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(TSC, ["--noEmit", "-p", project], { cwd: ROOT, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, output: stdout + stderr });
    });
  });
}

const Types = suite("plugin types");

Types("fixture plugins type-check against the SDK, and every expected mistake is caught", async () => {
  const { code, output } = await tsc(fixturePath("plugins", "types", "tsconfig.json"));
  assert.is(code, 0, output);
});

Types("a wrong config type does not type-check", async () => {
  // The same file without the directive on the wrong config type: tsc must fail on that line.
  const dir = tempDir("weir-types-");
  const text = readFileSync(fixturePath("plugins", "types", "wrong-types.ts"), "utf8").split("\n");
  const marker = text.findIndex((l) => l.includes("WRONG-CONFIG-TYPE"));
  assert.ok(marker > 0);
  const kept = text.filter((_l, i) => i !== marker);
  writeFileSync(join(dir, "wrong-types.ts"), kept.join("\n"));
  writeFileSync(join(dir, "tsconfig.json"), JSON.stringify({
    compilerOptions: { target: "ES2022", module: "ESNext", moduleResolution: "Bundler", strict: true, noEmit: true, skipLibCheck: true, types: [], paths: { "weir/sdk": [join(ROOT, "sdk", "index.ts")] } },
    files: ["wrong-types.ts"],
  }));
  const { code, output } = await tsc(join(dir, "tsconfig.json"));
  assert.is.not(code, 0, "tsc accepted a string config value used as a number");
  const lines = output.trim().split("\n").filter((l) => /error TS\d+/.test(l));
  assert.is(lines.length, 1, output);
  assert.match(lines[0]!, new RegExp(`wrong-types\\.ts\\(${marker + 1},\\d+\\): error TS2322: Type 'string' is not assignable to type 'number'`));
});

Types.run();
