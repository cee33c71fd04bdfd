/**
 * Plugins run on the isolated-vm line built for the running Node: 5.0.x on Node 20, the prebuilt
 * 6.x on Node 22 and 24. Where no build loads, starting a plugin fails with a message that says
 * what to do, not with a bare "Cannot find module".
 */
import { suite } from "uvu";
import * as assert from "uvu/assert";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { isolatedVm, isolatedVmCandidates, isolatedVmPackage } from "../../core/plugin-host/isolated-vm-line.js";
import { ROOT } from "../support/fixtures.js";
import { tempDir } from "../support/weir.js";

const Line = suite("isolated-vm line");

Line("the line made for this Node's ABI is the one loaded", () => {
  const abi = Number(process.versions.modules);
  const expected = abi >= 127 ? "isolated-vm-6" : "isolated-vm-5";
  assert.is(isolatedVmPackage(), expected, `Node ${process.version} (ABI ${abi})`);
  assert.is(isolatedVmCandidates(abi)[0], expected);
  assert.is(isolatedVmCandidates(abi).at(-1), "isolated-vm", "an application's own isolated-vm is the last resort");
});

Line("the loaded line runs code in an isolate under a memory and time limit", async () => {
  const ivm = isolatedVm();
  const isolate = new ivm.Isolate({ memoryLimit: 16 });
  try {
    const context = await isolate.createContext();
    assert.is(await context.eval("6 * 7", { timeout: 1000 }), 42);
    let stopped: unknown = null;
    try { await context.eval("for (;;) {}", { timeout: 50 }); } catch (err) { stopped = err; }
    assert.match(String(stopped), /timed out/i);
  } finally {
    isolate.dispose();
  }
});

Line("where no build loads, the error names the Node, what was tried and how to fix it", () => {
  // The loader alone, away from any node_modules: nothing can resolve.
  const dir = tempDir("weir-ivm-line-");
  mkdirSync(join(dir, "plugin-host"));
  copyFileSync(join(ROOT, "dist", "core", "errors.js"), join(dir, "errors.js"));
  copyFileSync(join(ROOT, "dist", "core", "plugin-host", "isolated-vm-line.js"), join(dir, "plugin-host", "isolated-vm-line.js"));
  writeFileSync(join(dir, "package.json"), JSON.stringify({ type: "module" }));
  const probe = `import { isolatedVm } from "./plugin-host/isolated-vm-line.js";
try { isolatedVm(); console.log("loaded"); } catch (e) { console.log(e.code); console.log(e.message); }`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", probe], { cwd: dir, encoding: "utf8", timeout: 20_000 });
  const [code, message = ""] = r.stdout.trim().split("\n");
  assert.is(code, "WEIR_ERR_SANDBOX_UNAVAILABLE", r.stdout + r.stderr);
  assert.ok(message.includes(`Node ${process.version}`), message);
  assert.ok(message.includes("isolated-vm-5: not installed") && message.includes("isolated-vm-6: not installed"), message);
  assert.ok(message.includes("Node 20, 22 and 24"), message);
  assert.ok(message.includes(`"allowScripts": { "isolated-vm": true }`), message);
  assert.ok(message.includes("npm rebuild isolated-vm-5 isolated-vm-6"), message);
});

Line.run();
