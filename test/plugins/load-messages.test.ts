/**
 * What a user reads when a plugin cannot load, through the real `weir validate` and `weir start`:
 * top-level code that runs too long names the load limit, its value and the key that sets it
 * (it used to say only "Script execution timed out."); a compile error names the plugin's file by
 * its absolute path, whatever directory Weir was started from.
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT } from "../support/fixtures.js";
import { tempDir } from "../support/weir.js";
import { pluginFixture } from "./support.js";

const source = readFileSync(pluginFixture("versioned.ts"), "utf8");

/** Runs bin/weir.js ARGS from `cwd` to its end (killed after 20 s). */
async function weir(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, "bin", "weir.js"), ...args], { cwd, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  let stdout = "", stderr = "";
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

function project(plugin: string, limits = ""): { dir: string; config: string; plugin: string } {
  const dir = tempDir("weir-load-messages-");
  const file = join(dir, "p.ts");
  writeFileSync(file, plugin);
  const config = join(dir, "weir.yaml");
  writeFileSync(config, `listen: { port: 0, host: 127.0.0.1 }\nadmin: false\nroutes:\n  - { match: { path: / }, upstream: "http://127.0.0.1:9", plugins: [{ use: ./p.ts${limits} }] }\n`);
  return { dir, config, plugin: file };
}

const Messages = suite("messages when a plugin cannot load");

Messages("top-level code past the load limit names the limit and limits.loadTimeoutMs", async () => {
  const p = project(source.replace("export default", "while (true) { /* never returns */ }\nexport default"), ", limits: { loadTimeoutMs: 150 }");
  for (const command of ["validate", "start"]) {
    const r = await weir([command, "-c", "weir.yaml"], p.dir);
    assert.is(r.code, 1, `${command}: ${r.stdout}${r.stderr}`);
    const line = r.stderr.split("\n").find((l) => l.includes("routes[0].plugins[0]"));
    assert.ok(line, r.stderr);
    assert.match(line!, /^weir\.yaml: routes\[0\]\.plugins\[0\]\.use: /);
    assert.match(line!, /the plugin's top-level code ran past the load limit of 150 ms \(limits\.loadTimeoutMs of its entry, default 2000 ms\)/);
    assert.match(line!, /raise limits\.loadTimeoutMs/);
    assert.not.match(line!, /^.*: Script execution timed out\.$/);
  }
});

Messages("a compile error names the plugin file by its absolute path, from any working directory", async () => {
  const p = project(source + "\nexport const oops = {;\n");
  for (const cwd of [p.dir, ROOT]) {
    const r = await weir(["validate", "-c", join(p.dir, "weir.yaml")], cwd);
    assert.is(r.code, 1);
    assert.ok(r.stderr.includes(`cannot compile the plugin: ${p.plugin}:`), `from ${cwd}:\n${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${p.plugin.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:\\d+:\\d+: `));
  }
});

Messages.run();
