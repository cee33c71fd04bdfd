#!/usr/bin/env node
// Runs every dist/test/**/*.test.js in its own process (real servers and isolates per file, so a
// crash in one cannot hide another's result), sums uvu's per-file totals and ends with the line
// `N passed, N failed` that CI reads. A file that crashes or times out counts as one failure.
// Usage: node scripts/test.js [filter-substring ...]
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const filters = process.argv.slice(2);
const FILE_TIMEOUT_MS = Number(process.env.WEIR_TEST_FILE_TIMEOUT_MS ?? 180_000);
const CONCURRENCY = Number(process.env.WEIR_TEST_CONCURRENCY ?? 2);

function collect(dir, out = []) {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) collect(p, out);
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const files = collect(join(root, "dist", "test")).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
const strip = (s) => s.replace(/\x1b\[[0-9;]*m/g, "");
let passed = 0;
let failed = 0;
const failures = [];

function runFile(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ["--no-node-snapshot", "--enable-source-maps", file], {
      cwd: root,
      env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    const timer = setTimeout(() => { out += `\n[test runner] timed out after ${FILE_TIMEOUT_MS} ms, killed\n`; child.kill("SIGKILL"); }, FILE_TIMEOUT_MS);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      const text = strip(out);
      const total = Number(/Total:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const ok = Number(/Passed:\s+(\d+)/.exec(text)?.[1] ?? NaN);
      const name = relative(join(root, "dist"), file);
      let p = 0, f = 0;
      if (Number.isFinite(total) && Number.isFinite(ok)) { p = ok; f = total - ok; }
      if (code !== 0 && f === 0) f = 1; // crashed, timed out or failed outside a test
      passed += p; failed += f;
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      console.log(`${f ? "FAIL" : "ok  "} ${name}  (${p} passed, ${f} failed, ${secs}s${signal ? ", " + signal : ""})`);
      if (f) { failures.push(name); console.log(text.split("\n").map((l) => "    " + l).join("\n")); }
      resolve();
    });
  });
}

const queue = [...files];
await Promise.all(Array.from({ length: Math.max(1, CONCURRENCY) }, async () => {
  while (queue.length) await runFile(queue.shift());
}));
if (files.length === 0) { console.log("no test files found"); failed += 1; }
if (failures.length) console.log(`\nfailed files: ${failures.join(", ")}`);
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
