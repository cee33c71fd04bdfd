/**
 * Runs the real `weir` command (bin/weir.js) as a child process, the way a user or a process
 * manager would, and watches what it prints. Every child is killed when the test process exits,
 * so a failed assertion never leaves a stray Weir behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { ROOT } from "./fixtures.js";

export interface CliProcess {
  child: ChildProcess;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the first match of `pattern` in the output (waiting for it if needed). */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** Resolves when the process exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const running = new Set<ChildProcess>();
process.on("exit", () => { for (const c of running) killGroup(c); });

/**
 * bin/weir.js re-executes itself with --no-node-snapshot, so the server is a grandchild: killing
 * only the child would orphan it. Each Weir runs in its own process group, killed as a whole.
 */
export function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try { process.kill(-child.pid, "SIGKILL"); } catch { /* already gone */ }
}

export function runWeir(args: string[]): CliProcess {
  const child = spawn(process.execPath, [join(ROOT, "bin", "weir.js"), ...args], { cwd: ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } });
  running.add(child);
  let text = "";
  const waiters = new Set<() => void>();
  const onData = (d: Buffer) => { text += d.toString(); for (const w of waiters) w(); };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  let exitedNow = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("exit", (code, signal) => {
      exitedNow = true;
      running.delete(child);
      for (const w of waiters) w();
      resolve({ code, signal });
    });
  });
  return {
    child,
    output: () => text,
    exited,
    waitFor(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(text);
          if (m) { done(); resolve(m); }
          else if (exitedNow) { done(); reject(new Error(`weir exited before printing ${pattern}; output:\n${text}`)); }
        };
        const timer = setTimeout(() => { done(); reject(new Error(`weir did not print ${pattern} within ${timeoutMs} ms; output:\n${text}`)); }, timeoutMs);
        const done = () => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      });
    },
  };
}
