#!/usr/bin/env node
// The `weir` command. isolated-vm on Node 20 needs `--no-node-snapshot`; when we were started
// without it we run ourselves again with it, forwarding signals and the exit code, so that users
// never have to remember the flag.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

if (!process.execArgv.includes("--no-node-snapshot")) {
  const child = spawn(process.execPath, ["--no-node-snapshot", ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: "inherit" });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, () => child.kill(sig));
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  const { main } = await import("../dist/core/cli/main.js");
  process.exitCode = await main(process.argv.slice(2));
}
