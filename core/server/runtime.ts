/**
 * A running Weir: listeners, the current generation, retired generations still draining, the
 * target registry that outlives them, and the admin server. `reload` compiles a new generation and
 * swaps the pointer; a failed reload changes nothing.
 */
import type { Server } from "node:http";
import type { InboundRequest } from "../lifecycle/client-messages.js";
import type { AddressInfo } from "node:net";
import { once } from "node:events";
import { resolve } from "node:path";
import { checkConfig, compileGeneration } from "../config/compile.js";
import { PluginHost } from "../plugin-host/plugin-host.js";
import type { KeyValueStore } from "../store/key-value-store.js";
import { MemoryStore, type StoreStats } from "../store/memory-store.js";
import { STORE_DEFAULTS, storeBounds, type StoreBounds } from "../store/bounded-map.js";
import { RedisStore } from "../store/redis-store.js";
import { IpcStore } from "../cluster/ipc-store.js";
import type { Generation } from "../config/generation.js";
import { loadConfigFile } from "../config/loader.js";
import type { ListenConfig, WeirConfig } from "../config/schema.js";
import { ConfigError, ErrorCodes, WeirError } from "../errors.js";
import type { LifecycleHost } from "../lifecycle/handle-request.js";
import type { ProxyRequest, Rejection } from "../lifecycle/prepare-request.js";
import { createLogger, type Logger } from "../log/logger.js";
import { AccessLog, createAccessLogger } from "../log/access-log.js";
import type { DestinationStream } from "pino";
import { WeirMetrics } from "../metrics/weir-metrics.js";
import { NO_ROUTE } from "../metrics/request-metrics.js";
import { ConfigWatcher } from "../config/config-watcher.js";
import { TargetRegistry } from "../upstream/target-registry.js";
import { HealthCheckers } from "../upstream/health/checkers.js";
import { AdminServer, runtimeAdmin } from "../admin/admin-server.js";
import { applyLimits, createListener, type Listener } from "./listener.js";

export interface StartOptions {
  /** Path of the config file (YAML or JSON). */
  configFile: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Watch plugin sources and hot-reload them (default true). */
  watchPlugins?: boolean;
  /** Watch the config file and reload when it changes (default false; `weir start` turns it on, workers leave it to the primary). */
  watchConfig?: boolean;
  /** Start the admin server when the config has one (default true; workers leave it to the primary). */
  admin?: boolean;
  /** Where access log lines go (default stdout). */
  accessLog?: DestinationStream;
  /**
   * Running as a worker of `workers: N` (core/cluster/worker-main.ts): without `store.redis`, the
   * store is the primary's (IpcStore), shared by every worker, instead of this process's own.
   */
  clusterWorker?: boolean;
}

export const VERSION = "0.1.0";

export class WeirRuntime implements LifecycleHost {
  generation!: Generation;
  draining = false;
  readonly startedAt = new Date();
  readonly registry = new TargetRegistry();
  readonly log: Logger;
  readonly configFile: string;
  private readonly env: NodeJS.ProcessEnv;
  private nextGenerationId = 1;
  private readonly retired = new Set<Generation>();
  private readonly listeners: (Listener & { spec: ListenConfig })[] = [];
  private admin: AdminServer | null = null;
  private inflight = 0;
  private idleWaiters: (() => void)[] = [];
  store: KeyValueStore;
  private storeUrl: string | undefined;
  private storeBounds: StoreBounds = STORE_DEFAULTS;
  private readonly clusterWorker: boolean;
  readonly plugins: PluginHost;
  /** Active health checkers, one per target of a live generation (they survive reloads). */
  readonly health: HealthCheckers;
  readonly metrics: WeirMetrics;
  /** The access log, or null with `log.access: false`. */
  private access: AccessLog | null = null;
  private accessLogger: AccessLog | null = null;
  private readonly accessDestination: DestinationStream | undefined;
  private readonly logGiven: boolean;
  private watcher: ConfigWatcher | null = null;
  /** Reloads run one at a time (file watcher and POST /reload may ask at once). */
  private reloading: Promise<unknown> = Promise.resolve();

  private constructor(options: StartOptions) {
    this.configFile = resolve(options.configFile);
    this.env = options.env ?? process.env;
    this.log = options.logger ?? createLogger();
    this.logGiven = options.logger !== undefined;
    this.accessDestination = options.accessLog;
    this.clusterWorker = options.clusterWorker === true;
    this.store = this.localStore();
    this.health = new HealthCheckers(this.log);
    this.metrics = new WeirMetrics(this);
    this.plugins = new PluginHost(this.log, () => this.store, { watch: options.watchPlugins ?? true });
    this.plugins.onPluginLog = (name, lines) => this.writePluginLog(name, "", lines);
    this.plugins.onFailure = (name, f) => {
      this.metrics.plugins.failed(name, f.hook);
      this.log.warn({ plugin: name, version: f.version, hook: f.hook, code: f.code, ...(f.limit !== null ? { limit: f.limit } : {}), ...(f.requestId !== "" ? { requestId: f.requestId } : {}), error: f.message }, "plugin failed");
    };
  }

  /** Loads the config, starts every listener and the admin server. Throws ConfigError or WeirError. */
  static async start(options: StartOptions): Promise<WeirRuntime> {
    const rt = new WeirRuntime(options);
    const config = loadConfigFile(rt.configFile, rt.env);
    rt.applyLogSettings(config);
    rt.generation = await rt.compile(config);
    rt.syncHealth();
    try {
      for (const spec of listenSpecs(config)) {
        const listener = createListener(spec, rt.generation.limits, rt);
        await listen(listener.server, spec.port, spec.host ?? "0.0.0.0");
        rt.listeners.push({ ...listener, spec });
      }
      if (config.admin !== false && options.admin !== false) {
        rt.admin = new AdminServer(runtimeAdmin(rt), config.admin ?? {}, rt.log);
        await rt.admin.listen();
      }
      if (options.watchConfig === true) {
        rt.watcher = new ConfigWatcher(rt.configFile, () => { rt.reload().catch(() => undefined); }, rt.log);
        await rt.watcher.start();
      }
    } catch (err) {
      await rt.stop(0);
      throw err;
    }
    return rt;
  }

  /**
   * Re-reads the config file; on success the new generation serves every new request. A config
   * that cannot be used throws (ConfigError with key paths), is logged, and changes nothing.
   */
  reload(): Promise<Generation> {
    const run = this.reloading.then(() => this.reloadNow());
    this.reloading = run.catch(() => undefined);
    return run;
  }

  private async reloadNow(): Promise<Generation> {
    const started = performance.now();
    try {
      const gen = await this.swapIn();
      const ms = performance.now() - started;
      this.metrics.reloaded(true, ms);
      this.log.info({ generation: gen.id, routes: gen.routes.length, ms: Math.round(ms * 10) / 10 }, "config reloaded");
      return gen;
    } catch (err) {
      this.metrics.reloaded(false, 0);
      if (err instanceof ConfigError) {
        this.log.error({ configFile: this.configFile, problems: err.problems.map((p) => `${p.path || "(root)"}: ${p.message}`) }, "config reload failed; the previous config keeps serving");
      } else {
        this.log.error({ configFile: this.configFile, err }, "config reload failed; the previous config keeps serving");
      }
      throw err;
    }
  }

  private async swapIn(): Promise<Generation> {
    const config = loadConfigFile(this.configFile, this.env, { reload: true });
    const next = await this.compile(config);
    this.warnRestartOnly(this.generation.config, config);
    this.applyLogSettings(config);
    const previous = this.generation;
    this.generation = next;
    for (const l of this.listeners) applyLimits(l, next.limits);
    this.admin?.setToken(config.admin === false ? undefined : config.admin?.token);
    this.retired.add(previous);
    this.releaseDrained();
    this.syncHealth();
    return next;
  }

  /** Settings a reload cannot change in a running process: said once, in the log. */
  private warnRestartOnly(before: WeirConfig, after: WeirConfig): void {
    for (const key of ["listen", "admin", "workers"] as const) {
      const a = key === "admin" ? (before.admin ? { ...before.admin, token: undefined } : before.admin) : before[key];
      const b = key === "admin" ? (after.admin ? { ...after.admin, token: undefined } : after.admin) : after[key];
      if (JSON.stringify(a) !== JSON.stringify(b))
        this.log.warn({ key }, `a change of "${key}" takes effect on restart; the running ${key === "workers" ? "processes are" : "sockets are"} kept`);
    }
  }

  /** `log.level` (unless the embedder gave its own logger) and `log.access`. */
  private applyLogSettings(config: WeirConfig): void {
    if (config.log?.level !== undefined && !this.logGiven) this.log.level = config.log.level;
    if (config.log?.access === false) this.access = null;
    else this.access = (this.accessLogger ??= new AccessLog(createAccessLogger(this.accessDestination)));
  }

  /**
   * Config -> generation: plugins are compiled and loaded first (their config validated against
   * their schema), then everything else. Nothing is swapped in unless both succeed.
   */
  private async compile(config: WeirConfig): Promise<Generation> {
    const problems = checkConfig(config, this.configFile);
    if (problems.length) throw new ConfigError(problems);
    this.ensureStore(config);
    const { slots, problems: pluginProblems } = await this.plugins.prepare(config, this.configFile);
    if (pluginProblems.length) throw new ConfigError(pluginProblems);
    const gen = compileGeneration(config, this.configFile, this.nextGenerationId++, this.registry, {
      slots,
      pluginLog: (plugin, requestId, lines) => this.writePluginLog(plugin, requestId, lines),
      log: this.log,
    });
    this.plugins.commit(slots);
    for (const slot of slots.values()) slot.current.timing ??= this.metrics.plugins.timer(slot.current.name);
    return gen;
  }

  /**
   * The store behind ctx.store and rate limits without `store.redis`: in-process (rate limits
   * answered synchronously), or the primary's when this is a cluster worker, so that N workers
   * admit one limit, not N.
   */
  private localStore(): KeyValueStore {
    return this.clusterWorker ? new IpcStore() : new MemoryStore(this.storeBounds);
  }

  /** The store behind ctx.store and rate limits: Redis when configured, else localStore(). */
  private ensureStore(config: WeirConfig): void {
    const url = config.store?.redis;
    this.storeBounds = storeBounds(config.store);
    if (url && (this.store.kind !== "redis" || this.storeUrl !== url)) {
      const old = this.store;
      this.store = new RedisStore(url, { onError: (err) => this.log.warn({ err: err.message }, "redis store unavailable") });
      this.storeUrl = url;
      void old.close();
    } else if (!url && this.store.kind === "redis") {
      const old = this.store;
      this.store = this.localStore();
      this.storeUrl = undefined;
      void old.close();
    }
    if (this.store instanceof MemoryStore) this.store.setBounds(this.storeBounds);
  }

  /** The in-process store's figures, when this process holds it (not with Redis, nor in a worker). */
  storeStats(): StoreStats | null {
    return this.store instanceof MemoryStore ? this.store.stats() : null;
  }

  private writePluginLog(plugin: string, requestId: string, lines: unknown): void {
    if (!Array.isArray(lines)) return;
    for (const line of lines.slice(0, 20)) {
      if (!Array.isArray(line)) continue;
      const [level, msg, fields, lineRequestId] = line as [string, string, string, string | undefined];
      const lvl = level === "debug" || level === "warn" || level === "error" ? level : "info";
      let extra: unknown;
      try { extra = fields ? JSON.parse(fields) : undefined; } catch { extra = fields; }
      // onLog lines come back after the request is done: the sandbox names their request.
      const id = requestId || (typeof lineRequestId === "string" ? lineRequestId : "");
      this.log[lvl]({ plugin, requestId: id, fields: extra }, String(msg).slice(0, 2000));
    }
  }

  get logsAccess(): boolean {
    return this.access !== null;
  }

  requestStarted(gen: Generation): void {
    gen.inflight++;
    this.inflight++;
  }

  unparsedAnswered(peer: string, status: number, requestId: string, message: string): void {
    this.metrics.requests.count(NO_ROUTE, status);
    this.access?.unparsed(peer, requestId, status, message);
  }

  internalError(err: unknown, where: string): void {
    this.log.error({ code: ErrorCodes.INTERNAL, where, err }, "an exception was caught at the listener; the connection was answered and closed, the process keeps serving");
  }

  requestFinished(gen: Generation, pr: ProxyRequest | null, status: number, error: unknown, refused?: { req: InboundRequest; rejection: Rejection }): void {
    if (pr !== null) {
      const now = performance.now();
      this.metrics.requests.record(pr.route.name, status, (now - pr.startedAt) / 1000);
      this.access?.routed(pr, status, error, now);
    } else {
      this.metrics.requests.count(NO_ROUTE, status);
      if (refused !== undefined) this.access?.refused(refused.req, refused.rejection.requestId, status, refused.rejection.message);
    }
    gen.inflight--;
    this.inflight--;
    if (gen !== this.generation && gen.inflight === 0) this.releaseDrained();
    if (this.inflight === 0 && this.idleWaiters.length) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Closes pools that only drained generations used. */
  private releaseDrained(): void {
    let released = false;
    for (const g of this.retired) if (g.inflight === 0) { this.retired.delete(g); released = true; }
    if (!released) return;
    const inUse = new Set(this.generation.targets);
    for (const g of this.retired) for (const t of g.targets) inUse.add(t);
    this.syncHealth();
    void this.registry.release(inUse);
  }

  /** Health checkers follow the live generations, newest first (its settings win). */
  private syncHealth(): void {
    this.health.sync([this.generation, ...[...this.retired].reverse()]);
  }

  /** For the metrics. */
  pluginSlots() {
    return this.plugins.all();
  }

  /** The ctx.metrics budgets of the live plugin entries. */
  metricBudgets() {
    return [...new Set(this.plugins.all().map((s) => s.current.metricBudget))];
  }

  inflightRequests(): number {
    return this.inflight;
  }

  /** The lean listeners' counts, summed; null when they are turned off (WEIR_LEAN_LISTENER=0). */
  leanListenerStats(): { served: number; handedOff: number } | null {
    let any = false, served = 0, handedOff = 0;
    for (const { lean } of this.listeners) {
      if (lean === null) continue;
      any = true;
      served += lean.served;
      handedOff += lean.handedOff;
    }
    return any ? { served, handedOff } : null;
  }

  /** Where the listeners and the admin server are, as URLs. */
  addresses(): { listen: string[]; admin: string | null } {
    return {
      listen: this.listeners.map(({ server, spec }) => urlOf(server, spec.tls ? "https" : "http")),
      admin: this.admin ? urlOf(this.admin.server, "http") : null,
    };
  }

  /**
   * Graceful stop: stop accepting, let in-flight requests finish for up to `graceMs` (default the
   * config's shutdownTimeout), then close whatever is left.
   */
  async stop(graceMs = this.generation?.shutdownTimeoutMs ?? 0): Promise<void> {
    this.draining = true;
    await this.watcher?.close();
    const closed = this.listeners.map(({ server }) => new Promise<void>((r) => server.close(() => r())));
    for (const { server, lean } of this.listeners) { server.closeIdleConnections(); lean?.closeIdle(); }
    if (this.inflight > 0 && graceMs > 0) {
      await new Promise<void>((r) => {
        const timer = setTimeout(r, graceMs);
        this.idleWaiters.push(() => { clearTimeout(timer); r(); });
      });
    }
    for (const { server, lean } of this.listeners) { server.closeAllConnections(); lean?.closeAll(); }
    await Promise.all(closed);
    await this.admin?.close();
    this.health.stopAll();
    await this.registry.closeAll();
    await this.plugins.close();
    await this.store.close();
    this.accessLogger?.flush();
  }
}

function listenSpecs(config: WeirConfig): ListenConfig[] {
  if (config.listen === undefined) return [{ port: 8080, host: "0.0.0.0" }];
  return Array.isArray(config.listen) ? config.listen : [config.listen];
}

async function listen(server: Server, port: number, host: string): Promise<void> {
  server.listen(port, host);
  try {
    await Promise.race([once(server, "listening"), once(server, "error").then(([e]) => { throw e; })]);
  } catch (err) {
    throw new WeirError(ErrorCodes.LISTEN_FAILED, `cannot listen on ${host}:${port}: ${(err as Error).message}`, 500, { cause: err });
  }
}

function urlOf(server: Server, scheme: string): string {
  const a = server.address() as AddressInfo;
  const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
  return `${scheme}://${host}:${a.port}`;
}
