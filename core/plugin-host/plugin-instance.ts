/**
 * One plugin entry of a config (a `use:` line with its config, limits and permissions) running in
 * its own isolate. It turns every way a plugin can fail — a throw, a timeout, running out of
 * memory, a promise that never settles, a bad result — into a PluginFailure value, rebuilds its
 * isolate when V8 disposed it, and keeps the counters `/plugins` and the metrics show.
 */
import type { CompiledPlugin } from "./compile-plugin.js";
import { SandboxIsolate, type HostCall } from "./sandbox-isolate.js";
import { incrementMetric, observeMetric } from "./plugin-metrics.js";
import type { HookTimer } from "../metrics/plugin-metrics.js";

/** Where a request adds up the time its plugin hooks took (ProxyRequest, for the access log). */
export interface HookTimeSink { pluginMs: number }

export interface PluginManifest {
  name: string;
  version: string;
  hooks: ("onRequest" | "onResponse" | "onLog")[];
  configSchema: Record<string, unknown> | null;
  permissions: { store?: boolean; fetch?: string[]; jwt?: boolean };
}

export interface InstanceLimits {
  memoryMb: number;
  /**
   * Time limit of one synchronous hook run. isolated-vm measures it as elapsed time on the calling
   * thread (its cpuTime is wall time too; measured here), so a busy host eats into it.
   */
  timeoutMs: number;
  /** Wall-clock limit of an async hook (awaiting the store, fetch, jwt). */
  asyncTimeoutMs: number;
}

/** A hook's outcome that is not a result: the caller applies the entry's onError. */
export class PluginFailure {
  constructor(readonly plugin: string, readonly hook: string, readonly message: string) {}
}

export type InstanceState = "active" | "degraded" | "rebuilding" | "failed";

const DEGRADED_AFTER = 5;
const MAX_ERRORS_KEPT = 10;
const MAX_LOG_QUEUE = 10_000;
const LOG_BATCH = 32;
/** How long a retired instance may keep running the onLog calls queued before its retirement. */
const LOG_DRAIN_MS = 5000;

export class PluginInstance {
  private sandbox: SandboxIsolate | null;
  private rebuilding: Promise<void> | null = null;
  private consecutiveFailures = 0;
  /** Requests that hold this instance (for draining before dispose on hot reload). */
  inflight = 0;
  retired = false;
  failures = 0;
  calls = 0;
  readonly errors: { at: string; hook: string; message: string }[] = [];

  readonly hasRequest: boolean;
  readonly hasResponse: boolean;
  readonly hasLog: boolean;
  private logQueue: string[] = [];
  private logScheduled = false;
  /** A batch of onLog calls is running in the isolate. */
  private logRunning = false;
  /** Retired with onLog calls still queued: disposed once they ran (see dispose). */
  private disposeWhenDrained = false;
  /** onLog calls dropped because the queue was full (the plugin could not keep up). */
  logDropped = 0;
  /** Hook durations for the metrics; set by the runtime, carried over by PluginSlot.swap. */
  timing: HookTimer | null = null;

  private constructor(
    readonly compiled: CompiledPlugin,
    readonly manifest: PluginManifest,
    readonly configJson: string,
    readonly grantedJson: string,
    readonly limits: InstanceLimits,
    private readonly hostCall: HostCall,
    sandbox: SandboxIsolate,
    private readonly onError: (instance: PluginInstance, failure: PluginFailure) => void,
  ) {
    this.sandbox = sandbox;
    this.hasRequest = manifest.hooks.includes("onRequest");
    this.hasResponse = manifest.hooks.includes("onResponse");
    this.hasLog = manifest.hooks.includes("onLog");
  }

  /**
   * Queues an onLog call. The queue is bounded (ANCHORS.md: an unbounded queue of calls into an
   * isolate ran it out of memory): what overflows is dropped and counted.
   */
  enqueueLog(packed: string): void {
    if (this.logQueue.length >= MAX_LOG_QUEUE) { this.logDropped++; return; }
    this.logQueue.push(packed);
    if (!this.logScheduled && !this.logRunning) {
      this.logScheduled = true;
      setImmediate(this.flushLogs);
    }
  }

  /**
   * Runs the next batch of queued onLog calls. One batch at a time, on the isolate's own thread
   * (runBatchAsync): a slow onLog used to run here synchronously, on the event loop, so every
   * request waited behind it and the queue never filled (it paced the proxy at the onLog's speed).
   * Now requests go on while the isolate works; a plugin that cannot keep up fills its queue and
   * what overflows is dropped and counted.
   */
  private readonly flushLogs = (): void => {
    this.logScheduled = false;
    if (this.logRunning) return;
    if (this.logQueue.length === 0) {
      if (this.disposeWhenDrained) this.dispose();
      return;
    }
    if (this.retired && !this.sandbox) { this.logDropped += this.logQueue.length; this.logQueue = []; return; }
    // Up to LOG_BATCH queued calls cross into the isolate at once: the crossing is most of the
    // cost of a small onLog hook.
    const batch = this.logQueue.splice(0, LOG_BATCH);
    this.logRunning = true;
    void this.runBatch("onLog", batch).then((results) => {
      for (const r of results) {
        if (r instanceof Promise) void r.then((v) => this.logResult(v));
        else this.logResult(r);
      }
    }).finally(() => {
      this.logRunning = false;
      this.flushLogs();
    });
  };

  /** Runs queued calls of one hook in one crossing, with the time limit of all of them. */
  private async runBatch(hook: string, packed: string[]): Promise<(string | Promise<string | PluginFailure> | PluginFailure)[]> {
    const sandbox = this.sandbox;
    if (!sandbox || sandbox.disposed) return [this.fail(hook, "the plugin's isolate is being rebuilt after a failure")];
    this.calls += packed.length;
    const started = performance.now();
    let rs: string[];
    try {
      // The batch's limit grows with its size, but stays near one call's: a synchronous hook of
      // the same plugin waits for the isolate while a batch runs (a runaway onLog fails its whole
      // batch).
      rs = await sandbox.runBatchAsync(packed, Math.min(this.limits.timeoutMs * packed.length, Math.max(this.limits.timeoutMs, 200)));
    } catch (err) {
      // Retired and disposed while the batch ran (a reload's drain was cut short): dropped, not failed.
      if (this.retired && sandbox.disposed) { this.calls -= packed.length; this.logDropped += packed.length; return []; }
      this.timed(hook, started, undefined);
      return [this.fail(hook, describeSandboxError(err, this.limits))];
    }
    const each = (performance.now() - started) / packed.length;
    for (let i = 0; i < packed.length; i++) this.timing?.observe(hook, each);
    return rs.map((r) => (r.charCodeAt(0) === 1 ? this.settle(sandbox, hook, Number(r.slice(1))) : this.check(hook, r)));
  }

  /** Logs a plugin asked for in onLog reach the host log through this. */
  onLogOutput: (instance: PluginInstance, logs: unknown) => void = () => undefined;

  /**
   * Metric updates a hook made during its synchronous run come back with its result; applied here.
   * A bad one (wrong type, too many series) is recorded as an error of the plugin.
   */
  applyMetrics(ops: unknown): void {
    if (!Array.isArray(ops)) return;
    for (const op of ops as unknown[][]) {
      try {
        if (op[0] === 0) incrementMetric(this.name, String(op[1]), Number(op[2]), (op[3] ?? undefined) as Record<string, unknown> | undefined);
        else observeMetric(this.name, String(op[1]), Number(op[2]), (op[3] ?? undefined) as Record<string, unknown> | undefined);
      } catch (err) {
        this.errors.push({ at: new Date().toISOString(), hook: "metrics", message: String((err as Error).message) });
        if (this.errors.length > MAX_ERRORS_KEPT) this.errors.shift();
      }
    }
  }

  private logResult(r: string | PluginFailure): void {
    if (typeof r !== "string" || r === "") return;
    try {
      const out = JSON.parse(r) as { l?: unknown; m?: unknown };
      if (out.m !== undefined) this.applyMetrics(out.m);
      if (out.l !== undefined) this.onLogOutput(this, out.l);
    } catch { /* a malformed onLog result changes nothing */ }
  }

  /**
   * Loads a compiled plugin into a fresh isolate and reads its manifest. `configure` receives the
   * manifest and returns the config and grants to hand in (it validates them) or throws.
   */
  static async create(
    compiled: CompiledPlugin,
    limits: InstanceLimits,
    hostCall: HostCall,
    configure: (manifest: PluginManifest) => { configJson: string; grantedJson: string },
    onError: (instance: PluginInstance, failure: PluginFailure) => void,
  ): Promise<PluginInstance> {
    const sandbox = await SandboxIsolate.create({ memoryMb: limits.memoryMb, code: compiled.code, filename: compiled.file, hostCall });
    try {
      const manifest = parseManifest(sandbox.manifestJson);
      const { configJson, grantedJson } = configure(manifest);
      sandbox.configure(configJson, grantedJson);
      return new PluginInstance(compiled, manifest, configJson, grantedJson, limits, hostCall, sandbox, onError);
    } catch (err) {
      sandbox.dispose();
      throw err;
    }
  }

  get name(): string { return this.manifest.name; }

  get state(): InstanceState {
    if (this.rebuilding) return "rebuilding";
    if (!this.sandbox) return "failed";
    return this.consecutiveFailures >= DEGRADED_AFTER ? "degraded" : "active";
  }

  has(hook: string): boolean {
    return (this.manifest.hooks as string[]).includes(hook);
  }

  /**
   * Runs a hook. Returns the result string, a promise of it (async hook), or a PluginFailure.
   * Never throws.
   */
  run(hook: string, packed: string, sink?: HookTimeSink): string | Promise<string | PluginFailure> | PluginFailure {
    const sandbox = this.sandbox;
    if (!sandbox || sandbox.disposed) return this.fail(hook, "the plugin's isolate is being rebuilt after a failure");
    this.calls++;
    const started = performance.now();
    let r: string;
    try {
      r = sandbox.run(packed, this.limits.timeoutMs);
    } catch (err) {
      this.timed(hook, started, sink);
      return this.fail(hook, describeSandboxError(err, this.limits));
    }
    if (r.charCodeAt(0) === 1) {
      const p = this.settle(sandbox, hook, Number(r.slice(1)));
      void p.then(() => this.timed(hook, started, sink));
      return p;
    }
    this.timed(hook, started, sink);
    return this.check(hook, r);
  }

  private timed(hook: string, started: number, sink: HookTimeSink | undefined): void {
    const ms = performance.now() - started;
    this.timing?.observe(hook, ms);
    if (sink !== undefined) sink.pluginMs += ms;
  }

  private settle(sandbox: SandboxIsolate, hook: string, id: number): Promise<string | PluginFailure> {
    return new Promise((resolve) => {
      const watchdog = setTimeout(() => {
        // isolated-vm never times out a pending promise: we give up on it, and since a plugin that
        // never settles may be holding its isolate hostage we replace the isolate.
        sandbox.drop(id);
        resolve(this.fail(hook, `the async hook did not finish within ${this.limits.asyncTimeoutMs} ms`, true));
      }, this.limits.asyncTimeoutMs);
      sandbox.settle(id).then(
        (r) => { clearTimeout(watchdog); resolve(typeof r === "string" ? this.check(hook, r) : this.fail(hook, "bad async result")); },
        (err) => { clearTimeout(watchdog); resolve(this.fail(hook, describeSandboxError(err, this.limits))); },
      );
    });
  }

  private check(hook: string, r: string): string | PluginFailure {
    if (r.length > 1 && r.startsWith('{"e":')) {
      let message = "the plugin failed";
      try { message = (JSON.parse(r) as { e: string }).e; } catch { /* keep the generic message */ }
      return this.fail(hook, message);
    }
    this.consecutiveFailures = 0;
    return r;
  }

  private fail(hook: string, message: string, replace = false): PluginFailure {
    this.failures++;
    this.consecutiveFailures++;
    this.errors.push({ at: new Date().toISOString(), hook, message });
    if (this.errors.length > MAX_ERRORS_KEPT) this.errors.shift();
    const failure = new PluginFailure(this.manifest.name, hook, message);
    this.onError(this, failure);
    if ((replace || this.sandbox?.disposed) && !this.retired) this.rebuild();
    return failure;
  }

  /** Replaces a disposed (or hostage) isolate with a fresh one from the same bundle. */
  private rebuild(): void {
    if (this.rebuilding) return;
    const old = this.sandbox;
    this.sandbox = null;
    old?.dispose();
    this.rebuilding = SandboxIsolate.create({ memoryMb: this.limits.memoryMb, code: this.compiled.code, filename: this.compiled.file, hostCall: this.hostCall })
      .then((s) => {
        s.configure(this.configJson, this.grantedJson);
        if (this.retired) s.dispose();
        else this.sandbox = s;
      })
      .catch((err) => {
        this.errors.push({ at: new Date().toISOString(), hook: "rebuild", message: String((err as Error).message) });
      })
      .finally(() => { this.rebuilding = null; });
  }

  heapUsed(): number {
    return this.sandbox?.heapUsed() ?? 0;
  }

  /**
   * Disposes the isolate. An instance retired by a reload (its requests drained) first runs the
   * onLog calls those requests queued, so they are not lost with it (bounded: the drain is given
   * LOG_DRAIN_MS, then what is left is dropped and counted). Shutdown (not retired) disposes at once.
   */
  dispose(): void {
    if (this.retired && this.sandbox && (this.logRunning || this.logQueue.length > 0)) {
      if (!this.disposeWhenDrained) {
        this.disposeWhenDrained = true;
        setTimeout(() => this.disposeNow(), LOG_DRAIN_MS).unref();
      }
      return;
    }
    this.disposeNow();
  }

  private disposeNow(): void {
    this.retired = true;
    this.disposeWhenDrained = false;
    this.logDropped += this.logQueue.length;
    this.logQueue = [];
    this.sandbox?.dispose();
    this.sandbox = null;
  }
}

function parseManifest(json: string): PluginManifest {
  const m = JSON.parse(json) as Partial<PluginManifest> & { error?: string };
  if (m.error) throw new Error(m.error);
  if (typeof m.name !== "string" || !/^[a-z0-9][a-z0-9-]*$/.test(m.name)) throw new Error(`the plugin's name must be lower-case letters, digits and dashes (got ${JSON.stringify(m.name)})`);
  if (typeof m.version !== "string" || !/^\d+\.\d+\.\d+([-+].*)?$/.test(m.version)) throw new Error(`the plugin's version must be a semantic version such as "1.0.0" (got ${JSON.stringify(m.version)})`);
  if (!m.hooks || m.hooks.length === 0) throw new Error("the plugin defines no hook (onRequest, onResponse or onLog)");
  return { name: m.name, version: m.version, hooks: m.hooks, configSchema: m.configSchema ?? null, permissions: m.permissions ?? {} };
}

function describeSandboxError(err: unknown, limits: InstanceLimits): string {
  const message = String((err as Error)?.message ?? err);
  if (/timed out/i.test(message)) return `the hook ran longer than its time limit (limits.timeoutMs: ${limits.timeoutMs} ms)`;
  if (/memory limit/i.test(message)) return `the plugin went over its ${limits.memoryMb} MB memory limit; its isolate was replaced`;
  if (/disposed/i.test(message)) return "the plugin's isolate was disposed; it is being replaced";
  return message.slice(0, 300);
}
