/**
 * Every process the benchmark starts, so that it can stop them all: on a normal end, on an error,
 * and on Ctrl-C. Processes are stopped by their own PID (SIGTERM, then SIGKILL after a grace
 * period), never by name, because other people's processes share this machine.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";

export interface Child {
  name: string;
  proc: ChildProcess;
  pid: number;
  /** Everything the process wrote so far (stdout and stderr), for error messages. */
  output(): string;
  /** Resolves with the first match of `pattern` in the output; rejects on exit or timeout. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
}

const GRACE_MS = 2_000;

export class ChildSet {
  private readonly children = new Set<Child>();
  /** Short-lived processes started elsewhere (the load generator), killed with the rest. */
  private readonly adopted = new Set<ChildProcess>();
  private readonly cleanups: (() => void)[] = [];
  private hooked = false;

  /** Tracks a process started elsewhere until it exits. */
  adopt(proc: ChildProcess): void {
    this.hookExit();
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    this.adopted.add(proc);
    proc.once("exit", () => this.adopted.delete(proc));
  }

  /** Runs `fn` (synchronously) when the benchmark is interrupted, after its processes are stopped. */
  onInterrupt(fn: () => void): void {
    this.cleanups.push(fn);
  }

  /** Starts `command args` (prefixed by `pin`, e.g. ["taskset", "-c", "1"]) and tracks it. */
  start(name: string, command: string, args: string[], options: SpawnOptions & { pin?: string[] } = {}): Child {
    this.hookExit();
    const pin = options.pin ?? [];
    const argv = [...pin, command, ...args];
    const proc = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], ...options });
    if (proc.pid === undefined) throw new Error(`${name}: could not start ${argv.join(" ")}`);
    let text = "";
    const listeners = new Set<() => void>();
    const onData = (d: Buffer) => {
      text += d.toString();
      if (text.length > 64_000) text = text.slice(-32_000);
      for (const l of listeners) l();
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", onData);
    const child: Child = {
      name,
      proc,
      pid: proc.pid,
      output: () => text,
      waitFor: (pattern, timeoutMs = 15_000) =>
        new Promise((resolve, reject) => {
          const check = () => {
            const m = text.match(pattern);
            if (m) { cleanup(); resolve(m); }
          };
          const onExit = (code: number | null, signal: string | null) => {
            cleanup();
            reject(new Error(`${name} exited (${signal ?? code}) before it was ready:\n${text.trim()}`));
          };
          const timer = setTimeout(() => { cleanup(); reject(new Error(`${name} was not ready within ${timeoutMs} ms:\n${text.trim()}`)); }, timeoutMs);
          const cleanup = () => { clearTimeout(timer); listeners.delete(check); proc.off("exit", onExit); };
          listeners.add(check);
          proc.once("exit", onExit);
          check();
        }),
    };
    proc.once("exit", () => this.children.delete(child));
    this.children.add(child);
    return child;
  }

  /** Stops one process: SIGTERM, then SIGKILL when it is still there after the grace period. */
  async stop(child: Child): Promise<void> {
    const { proc } = child;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((r) => proc.once("exit", () => r()));
    proc.kill("SIGTERM");
    const timer = setTimeout(() => proc.kill("SIGKILL"), GRACE_MS);
    await exited;
    clearTimeout(timer);
  }

  async stopAll(): Promise<void> {
    for (const p of this.adopted) p.kill("SIGKILL");
    await Promise.all([...this.children].map((c) => this.stop(c)));
  }

  /** Last resort when the process is exiting: no time left to wait, so SIGKILL what is left. */
  private killAllNow(): void {
    for (const p of [...this.children].map((c) => c.proc).concat([...this.adopted])) {
      try { p.kill("SIGKILL"); } catch { /* already gone */ }
    }
  }

  private hookExit(): void {
    if (this.hooked) return;
    this.hooked = true;
    process.once("exit", () => this.killAllNow());
    let interrupted = false;
    const finish = () => {
      for (const fn of this.cleanups) {
        try { fn(); } catch { /* best effort */ }
      }
      process.exit(130);
    };
    for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
      // `on`, not `once`: a second signal (Ctrl-C twice, or `timeout`, which signals both its
      // child and its process group) must not kill us before our children are gone.
      process.on(sig, () => {
        if (interrupted) { this.killAllNow(); finish(); return; }
        interrupted = true;
        process.stderr.write(`\nbench: ${sig} received, stopping the processes it started\n`);
        void this.stopAll().finally(finish);
      });
    }
  }
}
