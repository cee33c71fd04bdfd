/**
 * One plugin entry of a config (a `use:` line with its config, limits and permissions) running in
 * its own isolate. It turns every way a plugin can fail — a throw, a timeout, running out of
 * memory, a promise that never settles, a bad result, an isolate V8 gave up on — into a
 * PluginFailure value, replaces its isolate when it cannot be used again, skips a plugin that
 * keeps failing for a cooldown (`degraded`), holds back a quarantined version, and keeps the
 * counters `/plugins` and the metrics show. Calls reach the isolate through IsolateCalls, never
 * synchronously.
 */
import type { CompiledPlugin } from "./compile-plugin.js";
import { SandboxIsolate } from "./sandbox-isolate.js";
import { IsolateCalls, STUCK_MARGIN_MS, type CallFault, type CallOutcome } from "./isolate-calls.js";
import { DEFAULT_MAX_METRIC_SERIES, MetricBudget, writeMetric, type DropReason } from "./plugin-metrics.js";
import type { HookTimer } from "../metrics/plugin-metrics.js";
import { ErrorCodes } from "../errors.js";

/**
 * Where a request adds up the time its plugin hooks took (ProxyRequest, for the access log); its
 * id tags the failures of its calls.
 */
export interface HookTimeSink { pluginMs: number; readonly requestId?: string }

export interface PluginManifest {
  name: string;
  version: string;
  hooks: ("onRequest" | "onResponse" | "onLog")[];
  configSchema: Record<string, unknown> | null;
  permissions: { store?: boolean; fetch?: string[]; jwt?: boolean; wasm?: boolean };
}

export interface InstanceLimits {
  memoryMb: number;
  /**
   * Time limit of one hook call in the isolate (isolated-vm counts elapsed time on the isolate's
   * thread). A call that V8 cannot stop gives up its isolate `STUCK_MARGIN_MS` later.
   */
  timeoutMs: number;
  /** Wall-clock limit of an async hook (awaiting the store, fetch, jwt). */
  asyncTimeoutMs: number;
  /** Time limit of the plugin's top-level code when it loads. */
  loadTimeoutMs?: number;
  /** Metric series the entry may make through ctx.metrics (plugin-metrics.ts). */
  maxMetricSeries?: number;
}

/**
 * A hook's outcome that is not a result: the caller applies the entry's onError. `code` is the
 * stable code of the kind of failure (core/errors.ts), `limit` the limit that was hit, if one was.
 * `detail` is set when Weir refused what the plugin handed back (a header, a status): Weir's own
 * words, which the client's 500 may carry (a plugin's own error message stays in the log).
 */
export class PluginFailure {
  constructor(
    readonly plugin: string,
    readonly hook: string,
    readonly message: string,
    readonly code: string = ErrorCodes.PLUGIN_FAILED,
    readonly version = "",
    readonly limit: string | null = null,
    readonly requestId = "",
    readonly detail: string | null = null,
  ) {}
}

export type InstanceState = "active" | "degraded" | "rebuilding" | "failed" | "quarantined";

/** What the host hears from an instance. */
export interface InstanceEvents {
  /** A call failed (metrics, logs). */
  failed(instance: PluginInstance, failure: PluginFailure): void;
  /**
   * The plugin did what takes a process down (see FatalKind); repeated, the host quarantines the
   * version.
   */
  fatal(instance: PluginInstance, reason: string, kind: FatalKind): void;
  /**
   * The first metric write of each kind the entry's budget dropped (the rest are only counted):
   * for the log. `limit` names the limit that was hit, if one was.
   */
  metricDropped?(instance: PluginInstance, hook: string, reason: DropReason, message: string, limit: string | null): void;
}

/**
 * `lost`: V8 gave up on the isolate (its thread and memory cannot be recovered: a supervised Weir
 * replaces the worker); `stuck`: V8 could not stop a call for a second past its limit; `refused`:
 * the plugin asked for an allocation that V8 cannot survive or stop, refused by the sandbox's guards.
 */
export type FatalKind = "lost" | "stuck" | "refused";

/** CPU time past the margin a stuck isolate may burn before its plugin counts as unstoppable. */
export const UNSTOPPABLE_MS = 1000;

/** Consecutive failures after which a plugin is skipped for a cooldown. */
export const DEGRADED_AFTER = 5;
/** The first cooldown; it doubles while the plugin keeps failing when tried again, up to the max. */
export const DEGRADED_COOLDOWN_MS = 5_000;
export const DEGRADED_COOLDOWN_MAX_MS = 300_000;
const MAX_ERRORS_KEPT = 10;
const MAX_LOG_QUEUE = 10_000;
/** How long a retired instance may keep running the onLog calls queued before its retirement. */
const LOG_DRAIN_MS = 5000;

export class PluginInstance {
  private sandbox: SandboxIsolate | null;
  private rebuilding: Promise<void> | null = null;
  private consecutiveFailures = 0;
  /** consecutiveFailures before the last success reset it (see refuse). */
  private failuresBeforeSuccess = 0;
  /** While degraded: skipped until this time (performance.now()). */
  private degradedUntil = 0;
  private cooldownMs = DEGRADED_COOLDOWN_MS;
  /** After a cooldown, one call tries the plugin again; the others are skipped until it is back. */
  private probing = false;
  /** Why this version is held back (quarantine), or null. */
  quarantined: string | null = null;

  /** Holds this version back (`reason`), or lets it run again (null). */
  quarantine(reason: string | null): void {
    this.quarantined = reason;
    if (reason !== null) this.calls_.dropQueued({ fault: "skipped" });
  }
  private readonly calls_: IsolateCalls;
  /** Bytes of WebAssembly memory the isolate last reported. */
  private wasmBytes = 0;
  /** Requests that hold this instance (for draining before dispose on hot reload). */
  inflight = 0;
  retired = false;
  failures = 0;
  calls = 0;
  /** Calls skipped because the plugin was degraded or quarantined. */
  skipped = 0;
  readonly errors: { at: string; hook: string; message: string; code?: string }[] = [];

  readonly hasRequest: boolean;
  readonly hasResponse: boolean;
  readonly hasLog: boolean;
  /** Retired with onLog calls still queued: disposed once they ran (see dispose). */
  private disposeWhenDrained = false;
  private disposing = false;
  /** onLog calls dropped because the queue was full (the plugin could not keep up). */
  logDropped = 0;
  private logQueued = 0;
  /** Hook durations for the metrics; set by the runtime, carried over by PluginSlot.swap. */
  timing: HookTimer | null = null;
  /** Logs a plugin asked for in onLog reach the host log through this. */
  onLogOutput: (instance: PluginInstance, logs: unknown) => void = () => undefined;
  /** The entry's share of ctx.metrics; the host hands the entry's own (kept across hot reloads). */
  metricBudget: MetricBudget;

  private constructor(
    readonly compiled: CompiledPlugin,
    readonly manifest: PluginManifest,
    readonly configJson: string,
    readonly grantedJson: string,
    readonly limits: InstanceLimits,
    private readonly hostCall: HostCall,
    sandbox: SandboxIsolate,
    private readonly events: InstanceEvents,
    private readonly wasm: boolean,
  ) {
    this.sandbox = sandbox;
    this.metricBudget = new MetricBudget(manifest.name, "", limits.maxMetricSeries ?? DEFAULT_MAX_METRIC_SERIES);
    this.hasRequest = manifest.hooks.includes("onRequest");
    this.hasResponse = manifest.hooks.includes("onResponse");
    this.hasLog = manifest.hooks.includes("onLog");
    this.calls_ = new IsolateCalls({
      sandbox: () => this.sandbox,
      timeoutMs: limits.timeoutMs,
      asyncTimeoutMs: limits.asyncTimeoutMs,
      capability: (name, args) => this.hostCall(name, args),
      extras: (hook, json) => this.logResult(json, hook),
      wasmBytes: (bytes) => this.checkWasm(bytes),
      replace: () => this.rebuild(),
      stuck: (sandbox, ended) => this.stuck(sandbox, ended),
      refused: (what) => this.events.fatal(this, `refused ${what}: an allocation that would take the process down or could not be stopped`, "refused"),
      skipping: () => this.quarantined !== null || (this.consecutiveFailures >= DEGRADED_AFTER && performance.now() < this.degradedUntil),
    });
  }

  /**
   * Loads a compiled plugin into a fresh isolate and reads its manifest. `configure` receives the
   * manifest and returns the config and grants to hand in (it validates them) or throws. `wasm`:
   * the entry grants WebAssembly (decided before the plugin's code runs).
   */
  static async create(
    compiled: CompiledPlugin,
    limits: InstanceLimits,
    hostCall: HostCall,
    configure: (manifest: PluginManifest) => { configJson: string; grantedJson: string },
    events: InstanceEvents,
    wasm = false,
  ): Promise<PluginInstance> {
    let instance: PluginInstance | null = null;
    const sandbox = await SandboxIsolate.create({
      memoryMb: limits.memoryMb, wasm, code: compiled.code, filename: compiled.file, loadTimeoutMs: limits.loadTimeoutMs,
      onCatastrophe: (m) => instance?.lost(m),
    });
    try {
      const manifest = parseManifest(sandbox.manifestJson);
      const { configJson, grantedJson } = configure(manifest);
      await sandbox.configure(configJson, grantedJson);
      instance = new PluginInstance(compiled, manifest, configJson, grantedJson, limits, hostCall, sandbox, events, wasm);
      await sandbox.readHeap();
      return instance;
    } catch (err) {
      sandbox.dispose();
      throw err;
    }
  }

  get name(): string { return this.manifest.name; }

  get state(): InstanceState {
    if (this.quarantined !== null) return "quarantined";
    if (this.rebuilding) return "rebuilding";
    if (!this.sandbox) return "failed";
    return this.consecutiveFailures >= DEGRADED_AFTER ? "degraded" : "active";
  }

  /**
   * Runs a hook: a promise of the result string, or at once a PluginFailure (the plugin is
   * quarantined, degraded, or has no isolate). Never throws.
   */
  run(hook: string, packed: string, sink?: HookTimeSink): Promise<string | PluginFailure> | PluginFailure {
    const skip = this.skipReason();
    if (skip !== null) {
      this.skipped++;
      return new PluginFailure(this.manifest.name, hook, skip, this.quarantined !== null ? ErrorCodes.PLUGIN_QUARANTINED : ErrorCodes.PLUGIN_DEGRADED, this.manifest.version);
    }
    this.calls++;
    return new Promise((resolve) => {
      this.calls_.call(hook, packed, (o) => resolve(this.outcome(hook, o, sink)));
    });
  }

  /** Why a call is not run now, or null. */
  private skipReason(): string | null {
    if (this.quarantined !== null) return `quarantined: ${this.quarantined}`;
    if (this.consecutiveFailures >= DEGRADED_AFTER) {
      if (performance.now() < this.degradedUntil || this.probing) return `skipped: degraded after ${this.consecutiveFailures} consecutive failures (tried again ${Math.max(0, Math.ceil((this.degradedUntil - performance.now()) / 1000))} s from now)`;
      this.probing = true;
    }
    return null;
  }

  /**
   * Queues an onLog call. The queue is bounded (an unbounded queue of calls into an isolate ran
   * it out of memory): what overflows is dropped and counted.
   */
  enqueueLog(packed: string): void {
    if (this.logQueued >= MAX_LOG_QUEUE) { this.logDropped++; return; }
    if (this.skipReason() !== null) { this.skipped++; return; }
    this.logQueued++;
    this.calls_.call("onLog", packed, (o) => {
      this.logQueued--;
      // Disposed before it ran (shutdown, or a retired version's drain ran out): dropped.
      if (this.disposing) { this.logDropped++; return; }
      this.calls++;
      const r = this.outcome("onLog", o, undefined);
      if (typeof r === "string" && r !== "") this.logResult(r, "onLog");
      if (this.disposeWhenDrained && this.calls_.pending === 0) this.disposeNow();
    }, true);
  }

  private outcome(hook: string, o: CallOutcome, sink: HookTimeSink | undefined): string | PluginFailure {
    this.sandbox?.heapUsed(); // starts a fresh read when the last is a second old
    this.timing?.observe(hook, o.ms);
    if (sink !== undefined) sink.pluginMs += o.ms;
    if (typeof o.result !== "string" && o.result.fault === "skipped") {
      this.skipped++;
      return new PluginFailure(this.manifest.name, hook, this.skipReason() ?? "skipped", this.quarantined !== null ? ErrorCodes.PLUGIN_QUARANTINED : ErrorCodes.PLUGIN_DEGRADED, this.manifest.version);
    }
    if (typeof o.result !== "string") return this.fail(hook, this.describe(o.result), ...this.codeOf(o.result), sink?.requestId);
    return this.check(hook, o.result, sink?.requestId);
  }

  /** The stable code and the limit of a fault. */
  private codeOf(f: CallFault): [string, string | null] {
    const l = this.limits;
    switch (f.fault) {
      case "timeout": return [ErrorCodes.PLUGIN_TIMEOUT, `limits.timeoutMs=${l.timeoutMs}`];
      case "stuck": return [ErrorCodes.PLUGIN_STUCK, `limits.timeoutMs=${l.timeoutMs}`];
      case "memory": return [ErrorCodes.PLUGIN_MEMORY, `limits.memoryMb=${l.memoryMb}`];
      case "async-timeout": return [ErrorCodes.PLUGIN_ASYNC_TIMEOUT, `limits.asyncTimeoutMs=${l.asyncTimeoutMs}`];
      case "gone": case "rebuilding": return [ErrorCodes.PLUGIN_ISOLATE_LOST, null];
      default: return [ErrorCodes.PLUGIN_FAILED, null];
    }
  }

  private describe(f: CallFault): string {
    const l = this.limits;
    switch (f.fault) {
      case "timeout": return `the hook ran longer than its time limit (limits.timeoutMs: ${l.timeoutMs} ms)`;
      case "stuck": return `the hook ran past its time limit (limits.timeoutMs: ${l.timeoutMs} ms) and V8 could not stop it within ${STUCK_MARGIN_MS} ms more; its isolate was replaced`;
      case "memory": return `the plugin went over its ${l.memoryMb} MB memory limit (limits.memoryMb); its isolate was replaced`;
      case "async-timeout": return `the async hook did not finish within ${l.asyncTimeoutMs} ms (limits.asyncTimeoutMs)`;
      case "rebuilding": return "the plugin's isolate is being rebuilt after a failure";
      case "no-result": return "the plugin's isolate gave no result for the call";
      case "skipped": return "skipped";
      case "gone": return f.detail?.startsWith("V8 ") ? f.detail : "the plugin's isolate was disposed; it is being replaced";
    }
  }

  /**
   * Metric updates a hook made come back with its result; applied here, within the entry's
   * budget. A write that is dropped (a bad name or label, a name that is taken, past
   * limits.maxMetricSeries) is counted; the first of each kind is recorded as an error of the
   * plugin and logged. The request goes on: a metric is never worth a 500.
   */
  applyMetrics(ops: unknown, hook: string): void {
    if (!Array.isArray(ops)) return;
    const budget = this.metricBudget;
    for (const op of ops as unknown[]) {
      const o = Array.isArray(op) ? op : [];
      const d = writeMetric(budget, o[0] === 0 ? 0 : 1, String(o[1]), typeof o[2] === "number" ? o[2] : Number.NaN, o[3] ?? undefined);
      if (d === null || budget.dropped[d.reason] !== 1) continue;
      this.recordError(hook, d.message, ErrorCodes.PLUGIN_METRIC_DROPPED);
      this.events.metricDropped?.(this, hook, d.reason, d.message, d.reason === "limit" ? `limits.maxMetricSeries=${budget.limit}` : null);
    }
  }

  /** Logs and metrics of an onLog call, or written after a hook finished (`z` records). */
  private logResult(r: string, hook: string): void {
    let out: { l?: unknown; m?: unknown };
    try { out = JSON.parse(r) as { l?: unknown; m?: unknown }; } catch { return; /* a malformed result changes nothing */ }
    if (typeof out !== "object" || out === null) return;
    if (out.m !== undefined) this.applyMetrics(out.m, hook);
    if (out.l !== undefined) this.onLogOutput(this, out.l);
  }

  private checkWasm(bytes: number): void {
    this.wasmBytes = bytes;
    const used = (this.sandbox?.heapUsed() ?? 0) + bytes;
    if (used > this.limits.memoryMb * 1048576) {
      this.recordError("memory", `heap and WebAssembly memory (${Math.round(used / 1048576)} MB) went over the ${this.limits.memoryMb} MB limit (limits.memoryMb); the isolate was replaced`, ErrorCodes.PLUGIN_MEMORY);
      this.calls_.failAll({ fault: "memory" });
      this.rebuild();
    }
  }

  private check(hook: string, r: string, requestId: string | undefined): string | PluginFailure {
    if (r.length > 1 && r.startsWith('{"e":')) {
      let message = "the plugin failed";
      try { message = (JSON.parse(r) as { e: string }).e; } catch { /* keep the generic message */ }
      return this.fail(hook, message, ErrorCodes.PLUGIN_FAILED, null, requestId);
    }
    this.succeeded();
    return r;
  }

  private succeeded(): void {
    if (this.consecutiveFailures >= DEGRADED_AFTER) this.cooldownMs = DEGRADED_COOLDOWN_MS;
    this.failuresBeforeSuccess = this.consecutiveFailures;
    this.consecutiveFailures = 0;
    this.probing = false;
  }

  private recordError(hook: string, message: string, code?: string): void {
    this.errors.push({ at: new Date().toISOString(), hook, message, ...(code !== undefined ? { code } : {}) });
    if (this.errors.length > MAX_ERRORS_KEPT) this.errors.shift();
  }

  /**
   * Weir refused what a call handed back (`detail` says what, e.g. `set request header "x-a" to a
   * value with a control character (0x01)`): the plugin's failure like a throw, counted, logged
   * and shown in /plugins.
   */
  refuse(hook: string, detail: string, code: string, requestId: string): PluginFailure {
    // The call counted as a success when it returned; refused, it was not one: a plugin that
    // keeps handing back bad headers is degraded like one that keeps throwing.
    this.consecutiveFailures = Math.max(this.consecutiveFailures, this.failuresBeforeSuccess);
    return this.fail(hook, `plugin "${this.manifest.name}" ${detail}`, code, null, requestId, detail);
  }

  private fail(hook: string, message: string, code: string = ErrorCodes.PLUGIN_FAILED, limit: string | null = null, requestId = "", detail: string | null = null): PluginFailure {
    this.failures++;
    this.consecutiveFailures++;
    if (this.consecutiveFailures >= DEGRADED_AFTER) {
      // Tried again after a cooldown and failed again: a longer one.
      if (this.probing) this.cooldownMs = Math.min(DEGRADED_COOLDOWN_MAX_MS, this.cooldownMs * 2);
      this.probing = false;
      this.degradedUntil = performance.now() + this.cooldownMs;
    }
    this.recordError(hook, message, code);
    const failure = new PluginFailure(this.manifest.name, hook, message, code, this.manifest.version, limit, requestId, detail);
    this.events.failed(this, failure);
    return failure;
  }

  /**
   * V8 gave up on the isolate: its calls fail, the host hears of it (repeated, it quarantines the
   * version), a new isolate takes over. The lost one is never touched again.
   */
  private lost(reason: string): void {
    const message = `V8 could not go on in the plugin's isolate (${reason}); the isolate was abandoned and replaced`;
    this.recordError("isolate", message, ErrorCodes.PLUGIN_ISOLATE_LOST);
    this.calls_.failAll({ fault: "gone", detail: message });
    this.events.fatal(this, reason, "lost");
    this.sandbox = null; // not disposed: its thread holds the isolate for good
    this.rebuild();
  }

  /**
   * A crossing ran past its limit and V8 has not stopped it (a builtin that ignores the limit, a
   * collection near the memory limit): its calls have failed already; new calls go to a fresh
   * isolate while the old one is left to end. If it keeps burning CPU for UNSTOPPABLE_MS more, V8
   * cannot stop this plugin: that counts towards quarantine, and the old isolate is disposed.
   */
  private stuck(old: SandboxIsolate, ended: Promise<unknown>): void {
    const cpuAtStuck = old.cpuTimeMs();
    let done = false;
    const watch = setInterval(() => {
      if (done || old.disposed) { clearInterval(watch); return; }
      if (old.cpuTimeMs() - cpuAtStuck < UNSTOPPABLE_MS) return;
      clearInterval(watch);
      const reason = `a call ran past its ${this.limits.timeoutMs} ms time limit (limits.timeoutMs) and V8 could not stop it for ${UNSTOPPABLE_MS} ms of CPU more`;
      this.recordError("isolate", `${reason}; the isolate was disposed`, ErrorCodes.PLUGIN_STUCK);
      this.events.fatal(this, reason, "stuck");
      old.dispose();
    }, 100);
    watch.unref();
    void ended.then(() => { done = true; clearInterval(watch); if (this.sandbox !== old) old.dispose(); });
    this.rebuild(false);
  }

  /**
   * Replaces a disposed, lost or stuck isolate with a fresh one from the same bundle (`disposeOld`
   * false: the caller keeps the old one until its crossing ends).
   */
  private rebuild(disposeOld = true): void {
    if (this.rebuilding || this.retired) {
      if (this.retired && disposeOld) { this.sandbox?.dispose(); this.sandbox = null; }
      return;
    }
    const old = this.sandbox;
    this.sandbox = null;
    if (disposeOld) old?.dispose();
    this.rebuilding = (async () => {
      let s: SandboxIsolate | null = null;
      s = await SandboxIsolate.create({
        memoryMb: this.limits.memoryMb, wasm: this.wasm, code: this.compiled.code, filename: this.compiled.file,
        loadTimeoutMs: this.limits.loadTimeoutMs, onCatastrophe: (m) => { if (s !== null && this.sandbox === s) this.lost(m); },
      });
      await s.configure(this.configJson, this.grantedJson);
      await s.readHeap();
      if (this.retired) s.dispose();
      else this.sandbox = s;
    })().catch((err: unknown) => {
      this.recordError("rebuild", String((err as Error)?.message ?? err));
    }).finally(() => { this.rebuilding = null; });
  }

  /** Reads the heap (and WebAssembly) bytes in use now. */
  async readHeap(): Promise<number> {
    return ((await this.sandbox?.readHeap()) ?? 0) + this.wasmBytes;
  }

  /** Heap (and WebAssembly) bytes in use, as last read; never waits for the isolate. */
  heapUsed(): number {
    return (this.sandbox?.heapUsed() ?? 0) + this.wasmBytes;
  }

  /**
   * Disposes the isolate. An instance retired by a reload (its requests drained) first runs the
   * onLog calls those requests queued, so they are not lost with it (bounded: the drain is given
   * LOG_DRAIN_MS, then what is left is dropped and counted). Shutdown (not retired) disposes at once.
   */
  dispose(): void {
    if (this.retired && this.sandbox && this.calls_.pending > 0) {
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
    this.disposing = true;
    this.calls_.failAll({ fault: "gone" });
    this.sandbox?.dispose();
    this.sandbox = null;
  }
}

/** What a plugin's capability requests are answered by (capabilities.ts). */
export type HostCall = (name: string, argsJson: string) => string | Promise<string>;

function parseManifest(json: string): PluginManifest {
  const m = JSON.parse(json) as Partial<PluginManifest> & { error?: string };
  if (m.error) throw new Error(m.error);
  if (typeof m.name !== "string" || !/^[a-z0-9][a-z0-9-]*$/.test(m.name)) throw new Error(`the plugin's name must be lower-case letters, digits and dashes (got ${JSON.stringify(m.name)})`);
  if (typeof m.version !== "string" || !/^\d+\.\d+\.\d+([-+].*)?$/.test(m.version)) throw new Error(`the plugin's version must be a semantic version such as "1.0.0" (got ${JSON.stringify(m.version)})`);
  if (!m.hooks || m.hooks.length === 0) throw new Error("the plugin defines no hook (onRequest, onResponse or onLog)");
  return { name: m.name, version: m.version, hooks: m.hooks, configSchema: m.configSchema ?? null, permissions: m.permissions ?? {} };
}
