/**
 * `workers: N`: the primary process forks N workers (node:cluster) that share the listeners, and
 * does what must happen once per instance: the admin API, the config watcher, restarting a worker
 * that dies (with backoff), fanning reloads out to every worker, merging their metrics, and
 * draining them all on SIGTERM/SIGINT, and holding the store the workers share when there is no
 * `store.redis` (store-host.ts). It serves no proxied request itself, so a worker taken down by a
 * plugin (a memory bomb, a crash) never takes the listening socket with it.
 */
import cluster, { type Worker } from "node:cluster";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { AggregatorRegistry, Gauge, Counter, Registry, type MetricObjectWithValues, type MetricValue } from "prom-client";
import { AdminServer, TextBody, type AdminDispatch } from "../admin/admin-server.js";
import { checkConfig } from "../config/compile.js";
import { ConfigWatcher } from "../config/config-watcher.js";
import { toMs } from "../config/duration.js";
import { loadConfigFile } from "../config/loader.js";
import type { WeirConfig } from "../config/schema.js";
import { ConfigError, formatProblem } from "../errors.js";
import { createLogger, type Logger } from "../log/logger.js";
import { VERSION } from "../server/runtime.js";
import { isFromWorker, type FromWorker, type StoreReply, type ToWorker } from "./messages.js";
import { StoreHost } from "./store-host.js";
import { storeBounds } from "../store/bounded-map.js";
import { registerStoreMetrics } from "../metrics/store-metrics.js";

/** Restart delays: 100 ms, doubling up to 10 s; a worker that lived 10 s resets its slot's delay. */
const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 10_000;
const STABLE_AFTER_MS = 10_000;
const IPC_TIMEOUT_MS = 5_000;

/** A send with a callback reports its failure there instead of as an 'error' event. */
const ignoreSendError = (): void => undefined;

interface Slot {
  index: number;
  worker: Worker | null;
  ready: boolean;
  startedAt: number;
  restarts: number;
  failuresInRow: number;
  timer: NodeJS.Timeout | null;
}

type Request = Exclude<ToWorker, StoreReply> extends infer T ? (T extends unknown ? Omit<T, "id"> : never) : never;
type Pending = { resolve: (m: FromWorker | null) => void; timer: NodeJS.Timeout; worker: Worker };

export class Primary {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private stopping = false;
  private admin: AdminServer | null = null;
  private watcher: ConfigWatcher | null = null;
  private readonly registry = new Registry();
  private readonly restartsTotal: Counter;
  private readonly reloadsTotal: Counter;
  private readonly startedAt = new Date();
  private reloading: Promise<unknown> = Promise.resolve();
  private readyWaiters: (() => void)[] = [];
  private firstListen: string[] = [];
  private startupFailure: string | null = null;
  /** Rate limits and ctx.store of every worker without store.redis (ipc-store.ts). */
  private readonly store: StoreHost;

  constructor(readonly configFile: string, private config: WeirConfig, count: number, readonly log: Logger) {
    this.store = new StoreHost(storeBounds(config.store));
    this.slots = Array.from({ length: count }, (_, index) => ({ index, worker: null, ready: false, startedAt: 0, restarts: 0, failuresInRow: 0, timer: null }));
    this.restartsTotal = new Counter({ name: "weir_worker_restarts_total", help: "Workers restarted by the primary after they died.", registers: [this.registry], aggregator: "max" });
    this.reloadsTotal = new Counter({ name: "weir_config_reloads_total", help: "Config reloads, by result (success | failure).", labelNames: ["result"], registers: [this.registry], aggregator: "max" });
    this.reloadsTotal.inc({ result: "success" }, 0);
    this.reloadsTotal.inc({ result: "failure" }, 0);
    // Its values are filled in by metricsText(), which knows the workers.
    new Gauge({ name: "weir_workers", help: "Worker processes: ready now, and configured.", labelNames: ["state"], registers: [this.registry], aggregator: "max" });
    // The workers' shared store lives here: its figures are the primary's to report (the workers'
    // registries have the same names, without values).
    registerStoreMetrics(this.registry, () => this.store.stats());
  }

  /** Forks every worker and waits until each is ready; rejects with the first start-up failure. */
  async start(): Promise<void> {
    cluster.setupPrimary({
      exec: fileURLToPath(new URL("./worker-main.js", import.meta.url)),
      args: [],
      execArgv: process.execArgv, // --no-node-snapshot for isolated-vm
    });
    cluster.on("message", (worker, m: unknown) => this.onMessage(worker, m));
    for (const slot of this.slots) this.fork(slot);
    await new Promise<void>((r) => { this.readyWaiters.push(r); this.checkReady(); });
    if (this.startupFailure !== null) throw new Error(this.startupFailure);
    if (this.config.admin !== false) {
      this.admin = new AdminServer(this.dispatch, this.config.admin ?? {}, this.log);
      await this.admin.listen();
    }
    this.watcher = new ConfigWatcher(this.configFile, () => { this.reload().catch(() => undefined); }, this.log);
    await this.watcher.start();
  }

  addresses(): { listen: string[]; admin: string | null } {
    const a = this.admin?.server.address();
    return { listen: this.firstListen, admin: a && typeof a === "object" ? `http://${a.address}:${a.port}` : null };
  }

  private fork(slot: Slot): void {
    slot.timer = null;
    slot.ready = false;
    slot.startedAt = Date.now();
    const worker = cluster.fork({ WEIR_CONFIG_FILE: this.configFile, WEIR_WORKER_INDEX: String(slot.index) });
    slot.worker = worker;
    worker.on("exit", (code, signal) => this.onExit(slot, worker, code, signal));
    // A message sent just as the worker died fails later with EPIPE, emitted as 'error' on the
    // worker: without a listener that would take the primary, and every other worker, down.
    worker.on("error", (err: Error) => {
      this.log.warn({ worker: slot.index, pid: worker.process.pid, err: err.message }, "a message to a worker failed; it is probably dying");
      this.forgetPending(worker);
    });
    // Gone before 'exit' is emitted: stop sending it work, and stop waiting for its answers.
    worker.on("disconnect", () => {
      if (slot.worker === worker) slot.ready = false;
      this.forgetPending(worker);
    });
  }

  /** Stops waiting for a gone worker's answers: its callers get null ("did not answer"). */
  private forgetPending(worker: Worker): void {
    for (const [id, p] of this.pending) if (p.worker === worker) { this.pending.delete(id); clearTimeout(p.timer); p.resolve(null); }
  }

  private onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    if (slot.worker !== worker) return;
    const wasReady = slot.ready;
    slot.worker = null;
    slot.ready = false;
    if (this.stopping) { this.checkStopped(); return; }
    if (!wasReady && this.firstListen.length === 0) {
      // A worker that fails before the first one is up: the config or the port is the problem,
      // and every worker would fail the same way. Give up rather than restart forever.
      this.startupFailure = `worker ${slot.index} exited (${signal ?? `code ${code}`}) before it was ready`;
      this.checkReady(true);
      return;
    }
    const lived = Date.now() - slot.startedAt;
    slot.failuresInRow = lived >= STABLE_AFTER_MS ? 1 : slot.failuresInRow + 1;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** (slot.failuresInRow - 1));
    slot.restarts++;
    this.restartsTotal.inc();
    this.log.error({ worker: slot.index, pid: worker.process.pid, code, signal, restartInMs: delay, restarts: slot.restarts }, "worker died; restarting it");
    slot.timer = setTimeout(() => this.fork(slot), delay);
  }

  private onMessage(worker: Worker, m: unknown): void {
    if (!isFromWorker(m)) return;
    if (m.weir === "store") {
      // A worker gone before its answer: it has nobody left to tell.
      this.store.answer(m, (r) => { try { if (worker.isConnected()) worker.send(r, undefined, ignoreSendError); } catch { /* see above */ } });
      return;
    }
    if (m.weir === "ready") {
      const slot = this.slots.find((s) => s.worker === worker);
      if (!slot) return;
      slot.ready = true;
      if (this.firstListen.length === 0) this.firstListen = m.listen;
      if (slot.restarts > 0) this.log.info({ worker: slot.index, pid: worker.process.pid }, "worker restarted and ready");
      this.checkReady();
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    p.resolve(m);
  }

  private checkReady(failed = false): void {
    if (!failed && !this.slots.every((s) => s.ready)) return;
    for (const w of this.readyWaiters.splice(0)) w();
  }

  private live(): Worker[] {
    return this.slots.filter((s) => s.ready && s.worker?.isConnected()).map((s) => s.worker!);
  }

  /** Sends a request to one worker; resolves with its answer, or null when it did not answer. */
  private ask(worker: Worker, message: Request): Promise<FromWorker | null> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.pending.delete(id); resolve(null); }, IPC_TIMEOUT_MS);
      this.pending.set(id, { resolve, timer, worker });
      const failed = () => { if (this.pending.delete(id)) { clearTimeout(timer); resolve(null); } };
      try { worker.send({ ...message, id } as ToWorker, undefined, (err) => { if (err) failed(); }); } catch { failed(); }
    });
  }

  /**
   * Reloads every worker: the primary checks the file first (so a broken file never reaches a
   * worker), then each worker compiles and swaps in its own generation.
   */
  reload(): Promise<{ generation: number }> {
    const run = this.reloading.then(() => this.reloadNow());
    this.reloading = run.catch(() => undefined);
    return run;
  }

  private async reloadNow(): Promise<{ generation: number }> {
    try {
      const config = loadConfigFile(this.configFile, process.env, { reload: true });
      const problems = checkConfig(config, this.configFile);
      if (problems.length) throw new ConfigError(problems);
      const answers = await Promise.all(this.live().map((w) => this.ask(w, { weir: "reload" })));
      const failed = answers.find((a) => a?.weir === "reload-failed");
      if (failed && failed.weir === "reload-failed") {
        throw Object.assign(new Error(failed.message), { errors: failed.errors ?? [failed.message] });
      }
      if (answers.some((a) => a === null)) this.log.warn("a worker did not answer the reload in time");
      this.config = config;
      this.store.setBounds(storeBounds(config.store));
      this.reloadsTotal.inc({ result: "success" });
      const generation = Math.max(0, ...answers.map((a) => (a?.weir === "reloaded" ? a.generation : 0)));
      this.log.info({ generation, workers: answers.length }, "config reloaded in every worker");
      return { generation };
    } catch (err) {
      this.reloadsTotal.inc({ result: "failure" });
      const errors = err instanceof ConfigError ? err.problems.map(formatProblem) : ((err as { errors?: string[] }).errors ?? [String((err as Error).message)]);
      this.log.error({ configFile: this.configFile, problems: errors }, "config reload failed; the previous config keeps serving");
      throw Object.assign(err as Error, { errors });
    }
  }

  /** Every worker's registry and the primary's own, merged by each metric's aggregator. */
  async metricsText(): Promise<string> {
    const workers = this.live();
    const answers = await Promise.all(workers.map((w) => this.ask(w, { weir: "metrics" })));
    const sets: MetricObjectWithValues<MetricValue<string>>[][] = [];
    for (const a of answers) if (a?.weir === "metrics") sets.push(a.metrics);
    const own = await this.registry.getMetricsAsJSON();
    const gauge = own.find((m) => m.name === "weir_workers");
    if (gauge) gauge.values = [
      { labels: { state: "ready" }, value: workers.length },
      { labels: { state: "configured" }, value: this.slots.length },
    ];
    sets.push(own);
    return AggregatorRegistry.aggregate(sets).metrics();
  }

  private readonly dispatch: AdminDispatch = async (method, path) => {
    const key = `${method} ${path}`;
    if (key === "GET /health") return [200, { status: "ok", workers: this.live().length }];
    if (key === "GET /metrics") return [200, new TextBody(await this.metricsText(), this.registry.contentType)];
    if (key === "POST /reload") {
      try {
        return [200, await this.reload()];
      } catch (err) {
        return [400, { errors: (err as { errors?: string[] }).errors ?? [String(err)] }];
      }
    }
    const worker = this.live()[0];
    if (!worker) return [503, { error: "no worker is ready; try again shortly" }];
    const a = await this.ask(worker, { weir: "admin", method, path });
    if (a === null || a.weir !== "admin") return [504, { error: "the worker did not answer in time" }];
    if (key === "GET /status" && a.status === 200) {
      return [200, {
        ...(a.body as object),
        version: VERSION,
        startedAt: this.startedAt.toISOString(),
        workers: this.slots.map((s) => ({ index: s.index, pid: s.worker?.process.pid ?? null, ready: s.ready, restarts: s.restarts })),
      }];
    }
    return [a.status, a.body];
  };

  /** Drains every worker (each finishes its in-flight requests), then closes the admin API. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.watcher?.close();
    for (const s of this.slots) if (s.timer) { clearTimeout(s.timer); s.timer = null; }
    const grace = this.config.shutdownTimeout !== undefined ? toMs(this.config.shutdownTimeout) : 10_000;
    const exited = new Promise<void>((r) => { this.stoppedWaiter = r; this.checkStopped(); });
    for (const s of this.slots) s.worker?.process.kill("SIGTERM");
    const timer = setTimeout(() => { for (const s of this.slots) s.worker?.process.kill("SIGKILL"); }, grace + 2_000);
    await exited;
    clearTimeout(timer);
    await this.admin?.close();
    await this.store.close();
  }

  private stoppedWaiter: (() => void) | null = null;

  private checkStopped(): void {
    if (this.slots.every((s) => s.worker === null) && this.stoppedWaiter) this.stoppedWaiter();
  }
}

/** `weir start` with `workers` > 1. Returns the exit code. */
export async function runPrimary(file: string, count: number, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const configFile = resolve(file);
  let config: WeirConfig;
  try {
    config = loadConfigFile(configFile);
    const problems = checkConfig(config, configFile);
    if (problems.length) throw new ConfigError(problems);
  } catch (e) {
    if (e instanceof ConfigError) { for (const p of e.problems) err.write(formatProblem(p) + "\n"); return 1; }
    throw e;
  }
  const log = createLogger(config.log?.level ?? process.env.WEIR_LOG_LEVEL ?? "info").child({ primary: true });
  const primary = new Primary(configFile, config, count, log);
  let stopping = false;
  let resolveExit: (code: number) => void = () => undefined;
  const exit = new Promise<number>((r) => { resolveExit = r; });
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    out.write(`weir: ${signal} received, draining ${count} workers\n`);
    primary.stop().then(() => { out.write("weir: stopped\n"); resolveExit(0); }, (e) => { err.write(`weir: ${e}\n`); resolveExit(1); });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  try {
    await primary.start();
  } catch (e) {
    err.write(`weir: ${(e as Error).message}\n`);
    await primary.stop();
    return 1;
  }
  const { listen, admin } = primary.addresses();
  for (const url of listen) out.write(`weir: listening on ${url} (${count} workers)\n`);
  if (admin) out.write(`weir: admin API on ${admin}\n`);
  return exit;
}
