/**
 * The plugin host: turns the `plugins:` entries of a config into running plugin slots, keeps
 * them across config reloads when nothing about them changed, and hot-reloads a plugin when its
 * source changes (core/watch/file-watcher.ts), keeping the old version serving when the new one
 * fails to compile, load or validate.
 */
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { FileWatcher } from "../watch/file-watcher.js";
import type { ConfigProblem } from "../errors.js";
import type { Logger } from "../log/logger.js";
import type { PluginEntryConfig, WeirConfig } from "../config/schema.js";
import type { KeyValueStore } from "../store/key-value-store.js";
import { createHostCall, type Granted } from "./capabilities.js";
import { compilePlugin, PluginCompileError, type CompiledPlugin } from "./compile-plugin.js";
import { PluginFailure, PluginInstance, type FatalKind, type InstanceEvents, type InstanceLimits, type PluginManifest } from "./plugin-instance.js";
import { PluginSlot, type EntryInfo } from "./plugin-slot.js";
import { DEFAULT_MAX_METRIC_SERIES, MetricBudget } from "./plugin-metrics.js";
import semver from "semver";
import { checkBundleMatches, loadPackagedPlugin, type LoadPolicy } from "../marketplace/load-package.js";
import { DEFAULT_MAX_PACKAGE_BYTES, PackageError } from "../marketplace/package-format.js";

export const PLUGIN_DEFAULTS = { memoryMb: 32, timeoutMs: 50, asyncTimeoutMs: 5000, loadTimeoutMs: 2000, maxMetricSeries: DEFAULT_MAX_METRIC_SERIES } as const;

/** A version quarantined after this many fatal isolate errors within the window. */
export const QUARANTINE_AFTER = 2;
export const QUARANTINE_WINDOW_MS = 10 * 60_000;

/** A plugin version that did what takes a process down (see FatalKind). */
export interface FatalPluginEvent { plugin: string; version: string; hash: string; file: string; at: string; reason: string; kind: FatalKind }

/** A quarantined plugin version. */
export interface QuarantineEntry { hash: string; plugin: string; version: string; reason: string; since: string }

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true, verbose: true }); // verbose: parentSchema names the known keys

/** Where the built-in plugins are, from core/ (ts) and dist/core/ (js) layouts alike. */
function builtinDir(): string {
  const candidates = ["../../plugins", "../../../plugins"].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  // dist/plugins/ holds transpiled copies (no plugin.ts): look for the sources themselves.
  return candidates.find((p) => existsSync(resolve(p, "key-auth", "plugin.ts"))) ?? candidates.find((p) => existsSync(p)) ?? candidates[0]!;
}

export interface EntryRef { at: string; entry: PluginEntryConfig }

/** Every plugin entry of a config, with its key path. */
export function pluginEntries(config: WeirConfig): EntryRef[] {
  const out: EntryRef[] = [];
  config.plugins?.forEach((entry, i) => out.push({ at: `plugins[${i}]`, entry }));
  config.routes?.forEach((r, ri) => r.plugins?.forEach((entry, i) => out.push({ at: `routes[${ri}].plugins[${i}]`, entry })));
  return out;
}

export class PluginHost {
  private readonly compiled = new Map<string, Promise<CompiledPlugin>>();
  private slots = new Map<string, PluginSlot>();
  private watcher: FileWatcher | null = null;
  /** Hot reloads run one at a time, in the order their changes came: the last change wins. */
  private reloads: Promise<void> = Promise.resolve();
  /** The `version:` pin of each entry, so that a hot reload cannot swap in a replayed old package. */
  private readonly pins = new WeakMap<EntryInfo, string>();
  private closed = false;
  private policy: LoadPolicy = { requireSigned: false, trustedPublishers: {}, maxPackageBytes: DEFAULT_MAX_PACKAGE_BYTES };
  /** Called for every plugin failure (metrics, logs). */
  onFailure: (slotName: string, failure: PluginFailure) => void = () => undefined;
  /**
   * Called when V8 gave up on a plugin's isolate (an allocation it could not survive). The worker
   * of a supervised Weir reports it to the primary, which quarantines a version that does it
   * twice within ten minutes on every worker.
   */
  onFatal: (e: FatalPluginEvent) => void = () => undefined;
  /** The versions held back, by bundle hash. */
  private quarantine = new Map<string, QuarantineEntry>();
  /** Fatal events per bundle hash (times, ms), for the local quarantine rule. */
  private readonly fatalAt = new Map<string, number[]>();
  /**
   * The ctx.metrics budget of each entry, by key path and plugin name: kept across reloads and
   * hot reloads, so neither hands an entry a fresh allowance of series.
   */
  private readonly budgets = new Map<string, MetricBudget>();
  /** Where ctx.log lines written in onLog go (request-phase lines go through the generation). */
  onPluginLog: (plugin: string, lines: unknown) => void = () => undefined;

  constructor(private readonly log: Logger, private readonly store: () => KeyValueStore, private readonly options: { watch: boolean } = { watch: true }) {}

  /** Resolves `use:` to a source file: a built-in name, or a path relative to the config file. */
  resolveUse(use: string, configFile: string): { file: string; builtin: boolean } {
    if (/^[a-z0-9][a-z0-9-]*$/.test(use)) return { file: resolve(builtinDir(), use, "plugin.ts"), builtin: true };
    return { file: resolve(dirname(configFile), use), builtin: false };
  }

  /**
   * Builds (or reuses) a slot for every plugin entry. Returns the slots by key path, or the
   * problems found, in the config-problem format; on problems nothing changes.
   */
  async prepare(config: WeirConfig, configFile: string): Promise<{ slots: Map<string, PluginSlot>; problems: ConfigProblem[] }> {
    const problems: ConfigProblem[] = [];
    const policy: LoadPolicy = {
      requireSigned: config.requireSigned ?? false,
      trustedPublishers: config.trustedPublishers ?? {},
      maxPackageBytes: config.maxPackageBytes ?? DEFAULT_MAX_PACKAGE_BYTES,
    };
    this.policy = policy;
    // Every prepare re-reads and re-checks the packages, under this (possibly new) trust policy:
    // a package replaced on disk must be checked now, not found in the cache (the watcher may not
    // have seen it yet, or may be off). Reading and verifying a package is cheap; the slot key
    // (bundle digest) still reuses the running instance when nothing changed.
    for (const f of [...this.compiled.keys()]) if (f.endsWith(".weirpkg")) this.compiled.delete(f);
    const next = new Map<string, PluginSlot>();
    const created: PluginInstance[] = [];
    for (const { at, entry } of pluginEntries(config)) {
      const { file, builtin } = this.resolveUse(entry.use, configFile);
      if (builtin && !existsSync(file)) {
        problems.push({ file: configFile, path: `${at}.use`, message: `unknown built-in plugin "${entry.use}"; use a built-in name or a path such as ./plugins/my-policy.ts` });
        continue;
      }
      const limits: InstanceLimits = {
        memoryMb: entry.limits?.memoryMb ?? PLUGIN_DEFAULTS.memoryMb,
        timeoutMs: entry.limits?.timeoutMs ?? PLUGIN_DEFAULTS.timeoutMs,
        asyncTimeoutMs: entry.limits?.asyncTimeoutMs ?? PLUGIN_DEFAULTS.asyncTimeoutMs,
        loadTimeoutMs: entry.limits?.loadTimeoutMs ?? PLUGIN_DEFAULTS.loadTimeoutMs,
        maxMetricSeries: entry.limits?.maxMetricSeries ?? PLUGIN_DEFAULTS.maxMetricSeries,
      };
      if (policy.requireSigned && !builtin && !file.endsWith(".weirpkg")) {
        problems.push({ file: configFile, path: `${at}.use`, message: "requireSigned is on: a plugin must be a built-in or a signed .weirpkg package (weir plugin pack, then sign)" });
        continue;
      }
      let compiled: CompiledPlugin;
      try {
        compiled = await this.compile(file);
      } catch (err) {
        problems.push({ file: configFile, path: `${at}.use`, message: (err instanceof PackageError ? `refused package (${err.reason}): ` : "") + (err as Error).message });
        continue;
      }
      if (entry.version !== undefined) {
        const version = compiled.package?.version;
        if (version === undefined) problems.push({ file: configFile, path: `${at}.version`, message: "a version pin applies only to .weirpkg packages" });
        else if (!semver.satisfies(version, entry.version)) problems.push({ file: configFile, path: `${at}.version`, message: `the package is version ${version}; this entry pins ${entry.version}` });
        if (version === undefined || !semver.satisfies(version, entry.version)) continue;
      }
      const info: EntryInfo = { use: entry.use, file, at, builtin, onError: entry.onError ?? "closed" };
      if (entry.version !== undefined) this.pins.set(info, entry.version);
      const key = JSON.stringify([at, file, compiled.hash, entry.config ?? {}, limits, entry.permissions ?? null, info.onError, entry.version ?? null]);
      const existing = this.slots.get(key);
      if (existing) { next.set(at, existing); continue; }
      try {
        const instance = await this.instantiate(compiled, entry, limits, info, (msg) => { throw new EntryProblem(msg); });
        created.push(instance);
        next.set(at, new PluginSlot(instance, info, key));
      } catch (err) {
        if (err instanceof EntryProblem) problems.push(...err.problems(configFile, at));
        else problems.push({ file: configFile, path: `${at}.use`, message: `the plugin failed to load: ${(err as Error).message}` });
      }
    }
    if (problems.length) {
      for (const i of created) i.dispose();
      return { slots: new Map(), problems };
    }
    return { slots: next, problems };
  }

  /** Makes `slots` the live set: slots no longer used are disposed, new sources are watched. */
  commit(slots: Map<string, PluginSlot>): void {
    const keep = new Set([...slots.values()].map((s) => s.key));
    for (const [key, slot] of this.slots) if (!keep.has(key)) { slot.current.retired = true; if (slot.current.inflight === 0) slot.current.dispose(); }
    this.slots = new Map([...slots.values()].map((s) => [s.key, s]));
    if (this.options.watch) this.watchSources();
  }

  /**
   * Holds back the listed versions (by bundle hash) on every entry that runs them: each is handled
   * per its entry's onError without running; `/plugins` shows `state: quarantined`. A version not
   * in the list (a changed file) runs.
   */
  setQuarantine(entries: QuarantineEntry[]): void {
    this.quarantine = new Map(entries.map((e) => [e.hash, e]));
    for (const s of this.slots.values()) s.current.quarantine(this.quarantine.get(s.current.compiled.hash)?.reason ?? null);
  }

  /** The versions held back now. */
  quarantined(): QuarantineEntry[] {
    return [...this.quarantine.values()];
  }

  private events(info: EntryInfo): InstanceEvents {
    return {
      failed: (inst, failure) => this.onFailure(inst.name, failure),
      metricDropped: (inst, hook, reason, message, limit) => {
        this.log.warn({ plugin: inst.name, version: inst.manifest.version, at: info.at, hook, reason, ...(limit !== null ? { limit } : {}), code: "WEIR_ERR_PLUGIN_METRIC_DROPPED", error: message },
          "a plugin's metric write was dropped; more like it are only counted (weir_plugin_metric_series_dropped_total)");
      },
      fatal: (inst, reason, kind) => {
        const hash = inst.compiled.hash;
        const e: FatalPluginEvent = { plugin: inst.name, version: inst.manifest.version, hash, file: info.file, at: info.at, reason, kind };
        this.log.error({ ...e }, kind === "lost" ? "V8 gave up on a plugin's isolate; it was replaced" : kind === "stuck" ? "V8 could not stop a plugin; its isolate was replaced" : "a plugin asked for an allocation that would take the process down; refused");
        // The same rule the primary applies across workers, for this process alone (and for a Weir
        // run in-process, without a primary).
        const now = Date.now();
        const times = (this.fatalAt.get(hash) ?? []).filter((t) => now - t < QUARANTINE_WINDOW_MS);
        times.push(now);
        this.fatalAt.set(hash, times);
        if (times.length >= QUARANTINE_AFTER && !this.quarantine.has(hash)) {
          const entry: QuarantineEntry = { hash, plugin: inst.name, version: inst.manifest.version, reason: `${times.length} times within ${QUARANTINE_WINDOW_MS / 60_000} minutes it did what takes a process down (last: ${reason})`, since: new Date().toISOString() };
          this.setQuarantine([...this.quarantine.values(), entry]);
          this.log.error({ plugin: entry.plugin, version: entry.version, hash, reason: entry.reason }, "plugin version quarantined");
        }
        this.onFatal(e);
      },
    };
  }

  /** Every live slot (for /plugins and metrics). */
  all(): PluginSlot[] {
    return [...this.slots.values()];
  }

  private compile(file: string): Promise<CompiledPlugin> {
    let p = this.compiled.get(file);
    if (!p) {
      p = file.endsWith(".weirpkg") ? loadPackagedPlugin(file, this.policy) : compilePlugin(file);
      this.compiled.set(file, p);
      p.catch(() => this.compiled.delete(file));
    }
    return p;
  }

  private async instantiate(compiled: CompiledPlugin, entry: PluginEntryConfig, limits: InstanceLimits, info: EntryInfo, problem: (m: string) => never): Promise<PluginInstance> {
    let granted: Granted = {};
    const hostCall = (name: string, args: string) => call(name, args);
    let call = createHostCall("pending", {}, this.store);
    const instance = await PluginInstance.create(compiled, limits, hostCall, (manifest) => {
      if (compiled.package) {
        try { checkBundleMatches(compiled.package, manifest); } catch (err) { problem(`refused package (${(err as PackageError).reason}): ${(err as Error).message}`); }
      }
      granted = grantsFor(manifest, entry, info.builtin, problem);
      call = createHostCall(manifest.name, granted, this.store);
      const config = entry.config ?? {};
      if (manifest.configSchema) {
        const validate = ajv.compile(manifest.configSchema);
        if (!validate(config)) {
          throw new EntryProblem("", (validate.errors ?? []).map((e) => ({
            // The key path names the offending key itself, for a missing and an unknown one alike
            // (as the config loader does): routes[0].plugins[0].config.colour: unknown key ...
            path: "config" + e.instancePath.replace(/\/([0-9]+)/g, "[$1]").replace(/\//g, ".") +
              (e.keyword === "required" ? `.${(e.params as { missingProperty: string }).missingProperty}`
                : e.keyword === "additionalProperties" ? `.${(e.params as { additionalProperty: string }).additionalProperty}` : ""),
            message: e.keyword === "required" ? "is required"
              : e.keyword === "additionalProperties" ? `unknown key; expected one of: ${Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {}).join(", ")}`
              : e.message ?? "is invalid",
          })));
        }
      }
      return { configJson: JSON.stringify(config), grantedJson: JSON.stringify(granted) };
    }, this.events(info), entry.permissions?.wasm === true);
    instance.onLogOutput = (inst, lines) => this.onPluginLog(inst.name, lines);
    instance.metricBudget = this.budgetFor(info.at, instance.name, limits.maxMetricSeries ?? PLUGIN_DEFAULTS.maxMetricSeries);
    instance.quarantine(this.quarantine.get(compiled.hash)?.reason ?? null);
    return instance;
  }

  private budgetFor(at: string, plugin: string, limit: number): MetricBudget {
    const key = `${at}\u0000${plugin}`;
    let b = this.budgets.get(key);
    if (b === undefined) this.budgets.set(key, (b = new MetricBudget(plugin, at, limit)));
    b.limit = limit;
    return b;
  }

  /**
   * Watches every file the live plugins are built from: each entry's file as the config names it
   * (a symlink swapped under it is a change) and every input of its running and latest bundle.
   */
  private watchSources(): void {
    if (this.closed) return;
    this.watcher ??= new FileWatcher((path) => this.sourceChanged(path), this.log, { debounceMs: 50, what: "plugin source" });
    const files = new Set<string>();
    for (const s of this.slots.values()) {
      files.add(s.entry.file);
      for (const input of s.current.compiled.inputs) files.add(input);
    }
    // The latest compile of each entry may have more inputs than the running version (a new
    // import in a version that failed to load): watch those too.
    const pending = [...this.compiled.entries()].filter(([file]) => [...this.slots.values()].some((s) => s.entry.file === file));
    void Promise.all(pending.map(([, p]) => p.then((c) => c.inputs, () => [] as string[]))).then((lists) => {
      for (const list of lists) for (const input of list) files.add(input);
      if (!this.closed) this.watcher?.set(files);
    });
  }

  /** A watched source changed (one call per burst): rebuild what is built from it, in order. */
  private sourceChanged(path: string): void {
    void this.reloadFrom(path);
  }

  /** Rebuilds the plugins whose bundle includes `path` (after any rebuild under way). Exposed for tests. */
  reloadFrom(path: string): Promise<void> {
    const run = this.reloads.then(() => this.reloadNow(path));
    this.reloads = run.catch((err) => this.log.error({ err, plugin: path }, "plugin reload failed"));
    return run;
  }

  private async reloadNow(path: string): Promise<void> {
    if (this.closed) return;
    // The entries built from `path`: by their running bundle, or by their latest compile (which
    // may import a file the running one does not).
    const affected = new Set<string>();
    for (const s of this.all()) if (s.entry.file === path || s.current.compiled.inputs.includes(path)) affected.add(s.entry.file);
    for (const [file, p] of this.compiled) {
      const c = await p.catch(() => null);
      if (file === path || c?.inputs.includes(path)) affected.add(file);
    }
    for (const file of affected) {
      const slots = this.all().filter((s) => s.entry.file === file);
      if (slots.length === 0) continue;
      if (!existsSync(file)) {
        // Between a delete and a create (or a rename over it): the next event brings it back.
        this.log.warn({ plugin: file }, "plugin source deleted; the running version keeps serving until it is created again");
        continue;
      }
      this.compiled.delete(file);
      let compiled: CompiledPlugin;
      try {
        compiled = await this.compile(file);
      } catch (err) {
        const message = err instanceof PackageError ? `refused package (${err.reason}): ${err.message}` : err instanceof PluginCompileError ? err.message : String(err);
        for (const s of slots) s.reloadError = message;
        this.log.error({ plugin: file, error: message }, "plugin reload failed; the previous version keeps serving");
        continue;
      }
      for (const s of slots) {
        if (s.current.compiled.hash === compiled.hash) continue;
        const pin = this.pins.get(s.entry);
        if (pin !== undefined && compiled.package && !semver.satisfies(compiled.package.version, pin)) {
          s.reloadError = `refused package (version-mismatch): the package is version ${compiled.package.version}; ${s.entry.at}.version pins ${pin}`;
          this.log.error({ plugin: s.current.name, at: s.entry.at, error: s.reloadError }, "plugin reload failed; the previous version keeps serving");
          continue;
        }
        try {
          const entry: PluginEntryConfig = { use: s.entry.use, config: JSON.parse(s.current.configJson), permissions: JSON.parse(s.current.grantedJson) };
          const next = await this.instantiate(compiled, { ...entry, permissions: s.entry.builtin ? undefined : entry.permissions }, s.current.limits, s.entry, (m) => { throw new Error(m); });
          s.swap(next);
          this.log.info({ plugin: next.name, version: next.manifest.version, at: s.entry.at }, "plugin reloaded");
        } catch (err) {
          s.reloadError = err instanceof EntryProblem ? err.summary() : String((err as Error).message);
          this.log.error({ plugin: s.current.name, at: s.entry.at, error: s.reloadError }, "plugin reload failed; the previous version keeps serving");
        }
      }
    }
    if (this.options.watch) this.watchSources();
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    for (const s of this.slots.values()) s.current.dispose();
    this.slots.clear();
  }
}

/** A problem with one entry (its config or permissions), reported at the entry's key path. */
class EntryProblem extends Error {
  constructor(message: string, readonly items: { path: string; message: string }[] = [{ path: "", message }]) {
    super(message || items.map((i) => `${i.path}: ${i.message}`).join("; "));
  }
  problems(file: string, at: string): ConfigProblem[] {
    return this.items.map((i) => ({ file, path: i.path ? `${at}.${i.path}` : at, message: i.message }));
  }
  summary(): string {
    return this.items.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
  }
}

/**
 * What a plugin gets: what it declares, and for third-party plugins only if the entry grants it
 * (a plugin asking for more than its entry grants is refused, naming the missing grant). Built-ins
 * ship with Weir and get what they declare.
 */
function grantsFor(manifest: PluginManifest, entry: PluginEntryConfig, builtin: boolean, problem: (m: string) => never): Granted {
  const asked = manifest.permissions;
  const grant = entry.permissions ?? {};
  const missing: string[] = [];
  const out: Granted = {};
  if (asked.store) { if (builtin || grant.store) out.store = true; else missing.push("store: true"); }
  if (asked.jwt) { if (builtin || grant.jwt) out.jwt = true; else missing.push("jwt: true"); }
  if (asked.wasm) { if (grant.wasm) out.wasm = true; else missing.push("wasm: true"); }
  if (asked.fetch?.length) {
    const allowed = (builtin ? asked.fetch : asked.fetch.filter((o) => grant.fetch?.includes(o)));
    const notGranted = asked.fetch.filter((o) => !allowed.includes(o));
    if (notGranted.length) missing.push(`fetch: [${notGranted.map((o) => JSON.stringify(o)).join(", ")}]`);
    out.fetch = allowed;
  }
  if (builtin && grant.fetch?.length) out.fetch = [...(out.fetch ?? []), ...grant.fetch];
  if (missing.length) problem(`the plugin "${manifest.name}" asks for permissions this entry does not grant; add permissions: { ${missing.join(", ")} }`);
  return out;
}
