/**
 * `weir start`: the primary process is what supervises Weir, with any worker count (one by
 * default). It owns the listening sockets (connection-dispatch.ts) and forks the workers that
 * serve them, and does what must happen once per instance: the admin API, the config watcher,
 * replacing a worker that dies, fanning reloads out to every worker, merging their metrics,
 * draining them all on SIGTERM/SIGINT, and holding the store the workers share when there are
 * several and no `store.redis` (store-host.ts). It serves no proxied request itself and runs no
 * plugin, so a worker taken down by a plugin (a V8 abort, a crash) never takes the listening
 * socket with it: connections that arrive while no worker is up wait in the primary.
 *
 * Why a standby worker: a worker takes about a second to start (Node, its modules, the plugins'
 * isolates), far longer than a client should wait. So one more worker is kept started and idle
 * (no connection, no health check); when a worker dies the standby takes its place at once and a
 * new standby is started behind it. Without a standby ready (`standbyWorker: false`, or deaths
 * faster than a worker starts), a new worker is forked: at once for the first death, then after
 * 100 ms, doubling up to 10 s while the slot's workers keep dying within 10 s of starting.
 */
import cluster, { type Worker } from "node:cluster";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { AggregatorRegistry, Gauge, Counter, Registry, type MetricObjectWithValues, type MetricValue } from "prom-client";
import { AdminServer, TextBody, type AdminDispatch } from "../admin/admin-server.js";
import { ConfigWatcher } from "../config/config-watcher.js";
import { toMs } from "../config/duration.js";
import { loadConfigFile } from "../config/loader.js";
import type { WeirConfig } from "../config/schema.js";
import { ConfigError, formatProblem, WeirError } from "../errors.js";
import { createLogger, type Logger } from "../log/logger.js";
import { listenSpecs } from "../config/listen-specs.js";
import { VERSION } from "../server/version.js";
import { ConnectionDispatch } from "./connection-dispatch.js";
import { isFromWorker, type FromWorker, type StoreReply, type ToWorker } from "./messages.js";
import { StoreHost } from "./store-host.js";
import { storeBounds } from "../store/bounded-map.js";
import { registerStoreMetrics } from "../metrics/store-metrics.js";

const BACKOFF_START_MS = 100;
const BACKOFF_MAX_MS = 10_000;
const STABLE_AFTER_MS = 10_000;
const IPC_TIMEOUT_MS = 5_000;

/** A send with a callback reports its failure there instead of as an 'error' event. */
const ignoreSendError = (): void => undefined;

/** One worker process: serving a slot, standing by, or retiring (draining before it exits). */
interface Proc {
  worker: Worker;
  /** Its number in the logs (`"worker": N`): the slot's index, or a new number for a standby. */
  number: number;
  ready: boolean;
  startedAt: number;
  role: "serving" | "standby" | "retiring";
}

interface Slot {
  index: number;
  proc: Proc | null;
  /** When its last worker died (performance.now()), until the next one is ready; else null. */
  diedAt: number | null;
  restarts: number;
  failuresInRow: number;
  timer: NodeJS.Timeout | null;
}

type Request = Exclude<ToWorker, StoreReply | { weir: "connection" }> extends infer T ? (T extends { id: number } ? Omit<T, "id"> : never) : never;
type Pending = { resolve: (m: FromWorker | null) => void; timer: NodeJS.Timeout; worker: Worker };

export class Primary {
  private readonly slots: Slot[];
  private standby: Proc | null = null;
  private standbyTimer: NodeJS.Timeout | null = null;
  private readonly retiring = new Set<Proc>();
  private readonly procs = new Map<Worker, Proc>();
  private nextNumber: number;
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
  private listenUrls: string[] = [];
  /** A worker has been ready once: from then on a worker that dies is replaced, never given up. */
  private everReady = false;
  private startupFailure: string | null = null;
  private readonly connections: ConnectionDispatch;
  /** Rate limits and ctx.store of the workers without store.redis, when there are several (ipc-store.ts). */
  private readonly store: StoreHost;
  private readonly useStandby: boolean;

  constructor(readonly configFile: string, private config: WeirConfig, count: number, readonly log: Logger) {
    this.store = new StoreHost(storeBounds(config.store));
    this.slots = Array.from({ length: count }, (_, index) => ({ index, proc: null, diedAt: null, restarts: 0, failuresInRow: 0, timer: null }));
    this.nextNumber = count;
    this.useStandby = config.standbyWorker !== false;
    this.connections = new ConnectionDispatch(listenSpecs(config), () => this.live(), log);
    this.restartsTotal = new Counter({ name: "weir_worker_restarts_total", help: "Workers replaced by the primary after they died.", registers: [this.registry], aggregator: "max" });
    this.reloadsTotal = new Counter({ name: "weir_config_reloads_total", help: "Config reloads, by result (success | failure).", labelNames: ["result"], registers: [this.registry], aggregator: "max" });
    this.reloadsTotal.inc({ result: "success" }, 0);
    this.reloadsTotal.inc({ result: "failure" }, 0);
    // Its values are filled in by metricsText(), which knows the workers.
    new Gauge({ name: "weir_workers", help: "Worker processes: ready now, configured, and standing by.", labelNames: ["state"], registers: [this.registry], aggregator: "max" });
    const held = () => this.connections.heldTotal;
    new Counter({
      name: "weir_connections_held_total", help: "Connections that waited in the primary because no worker was ready.", registers: [this.registry], aggregator: "max",
      collect() { this.reset(); this.inc(held()); },
    });
    // The workers' shared store lives here: its figures are the primary's to report (the workers'
    // registries have the same names, without values).
    // With one worker the store is the worker's own, and so are its figures.
    registerStoreMetrics(this.registry, () => (count > 1 ? this.store.stats() : null));
  }

  /**
   * Listens, forks every worker and waits until each is ready; rejects with the first start-up
   * failure (WEIR_ERR_LISTEN_FAILED for a port in use).
   */
  async start(): Promise<void> {
    this.listenUrls = await this.connections.listen();
    cluster.setupPrimary({
      exec: fileURLToPath(new URL("./worker-main.js", import.meta.url)),
      args: [],
      execArgv: process.execArgv, // --no-node-snapshot for isolated-vm
    });
    cluster.on("message", (worker, m: unknown) => this.onMessage(worker, m));
    for (const slot of this.slots) slot.proc = this.fork("serving", slot.index);
    await new Promise<void>((r) => { this.readyWaiters.push(r); this.checkReady(); });
    if (this.startupFailure !== null) throw new Error(this.startupFailure);
    if (this.config.admin !== false) {
      this.admin = new AdminServer(this.dispatch, this.config.admin ?? {}, this.log);
      await this.admin.listen();
    }
    this.watcher = new ConfigWatcher(this.configFile, () => { this.reload().catch(() => undefined); }, this.log);
    await this.watcher.start();
    this.startStandby(0);
  }

  addresses(): { listen: string[]; admin: string | null } {
    const a = this.admin?.server.address();
    return { listen: this.listenUrls, admin: a && typeof a === "object" ? `http://${a.address}:${a.port}` : null };
  }

  private fork(role: "serving" | "standby", number: number): Proc {
    const worker = cluster.fork({
      WEIR_CONFIG_FILE: this.configFile,
      WEIR_WORKER_INDEX: String(number),
      WEIR_LISTEN_URLS: JSON.stringify(this.listenUrls),
      // One worker keeps its store in-process (rate limits answered synchronously, as fast as a
      // single process); several share the primary's, so that they admit one limit, not N.
      WEIR_SHARED_STORE: this.slots.length > 1 ? "1" : "0",
      WEIR_STANDBY: role === "standby" ? "1" : "0",
    });
    const proc: Proc = { worker, number, ready: false, startedAt: Date.now(), role };
    this.procs.set(worker, proc);
    worker.on("exit", (code, signal) => this.onExit(proc, code, signal));
    // A message sent just as the worker died fails later with EPIPE, emitted as 'error' on the
    // worker: without a listener that would take the primary, and every other worker, down.
    worker.on("error", (err: Error) => {
      this.log.warn({ worker: number, pid: worker.process.pid, err: err.message }, "a message to a worker failed; it is probably dying");
      this.forgetPending(worker);
    });
    // Gone before 'exit' is emitted: stop sending it work, and stop waiting for its answers.
    worker.on("disconnect", () => {
      proc.ready = false;
      this.forgetPending(worker);
    });
    return proc;
  }

  /** Keeps a standby started (after `delayMs`), unless turned off or one is there. */
  private startStandby(delayMs: number): void {
    if (!this.useStandby || this.stopping || this.standby !== null || this.standbyTimer !== null) return;
    this.standbyTimer = setTimeout(() => {
      this.standbyTimer = null;
      if (this.stopping || this.standby !== null) return;
      this.standby = this.fork("standby", this.nextNumber++);
    }, delayMs);
  }

  /** Stops waiting for a gone worker's answers: its callers get null ("did not answer"). */
  private forgetPending(worker: Worker): void {
    for (const [id, p] of this.pending) if (p.worker === worker) { this.pending.delete(id); clearTimeout(p.timer); p.resolve(null); }
  }

  private onExit(proc: Proc, code: number | null, signal: string | null): void {
    this.procs.delete(proc.worker);
    const wasReady = proc.ready;
    proc.ready = false;
    if (proc.role === "retiring") { this.retiring.delete(proc); this.checkStopped(); return; }
    if (proc.role === "standby") {
      if (this.standby === proc) this.standby = null;
      if (this.stopping) { this.checkStopped(); return; }
      this.log.error({ worker: proc.number, pid: proc.worker.process.pid, code, signal }, "the standby worker died; starting another");
      this.startStandby(BACKOFF_MAX_MS / 10);
      return;
    }
    const slot = this.slots.find((s) => s.proc === proc);
    if (!slot) return;
    slot.proc = null;
    if (this.stopping) { this.checkStopped(); return; }
    if (!wasReady && !this.everReady) {
      // A worker that fails before the first one is up: the config or a plugin is the problem,
      // and every worker would fail the same way. Give up rather than restart forever. Exit code 1
      // is a worker that said why (the config's problems, in validate's form) and nothing is added.
      this.startupFailure = code === 1 ? "" : `worker ${slot.index} exited (${signal ?? `code ${code}`}) before it was ready`;
      this.checkReady(true);
      return;
    }
    const lived = Date.now() - proc.startedAt;
    slot.failuresInRow = lived >= STABLE_AFTER_MS ? 1 : slot.failuresInRow + 1;
    const delay = slot.failuresInRow === 1 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** (slot.failuresInRow - 2));
    slot.restarts++;
    slot.diedAt = performance.now();
    this.restartsTotal.inc();
    const standby = this.standby !== null && this.standby.ready && this.standby.worker.isConnected() ? this.standby : null;
    this.log.error({ worker: proc.number, pid: proc.worker.process.pid, code, signal, restarts: slot.restarts, ...(standby ? { replacedBy: standby.number } : { restartInMs: delay }) }, "worker died; restarting it");
    if (standby) {
      this.promote(standby, slot);
      this.startStandby(delay);
    } else {
      slot.timer = setTimeout(() => { slot.timer = null; slot.proc = this.fork("serving", slot.index); }, delay);
    }
  }

  /** The standby takes `slot`'s place: connections go to it from now on. */
  private promote(standby: Proc, slot: Slot): void {
    this.standby = null;
    standby.role = "serving";
    slot.proc = standby;
    this.send(standby.worker, { weir: "activate" });
    this.slotReady(slot, standby);
  }

  private slotReady(slot: Slot, proc: Proc): void {
    if (slot.diedAt !== null) {
      const downMs = Math.round((performance.now() - slot.diedAt) * 10) / 10;
      slot.diedAt = null;
      this.log.info({ worker: proc.number, pid: proc.worker.process.pid, downMs, heldConnections: this.connections.holding }, "worker restarted and ready");
    }
    this.connections.workerReady();
  }

  private send(worker: Worker, m: ToWorker): void {
    try { if (worker.isConnected()) worker.send(m, undefined, ignoreSendError); } catch { /* it is dying; its exit is handled */ }
  }

  private onMessage(worker: Worker, m: unknown): void {
    if (!isFromWorker(m)) return;
    if (m.weir === "store") {
      // A worker gone before its answer: it has nobody left to tell.
      this.store.answer(m, (r) => this.send(worker, r));
      return;
    }
    if (m.weir === "ready") {
      const proc = this.procs.get(worker);
      if (!proc) return;
      proc.ready = true;
      if (proc.role === "standby") { this.log.debug({ worker: proc.number, pid: worker.process.pid }, "standby worker ready"); return; }
      this.everReady = true;
      const slot = this.slots.find((s) => s.proc === proc);
      if (slot) this.slotReady(slot, proc);
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
    if (!failed && !this.slots.every((s) => s.proc?.ready)) return;
    for (const w of this.readyWaiters.splice(0)) w();
  }

  /** The workers that serve connections now. */
  private live(): Worker[] {
    const out: Worker[] = [];
    for (const s of this.slots) if (s.proc?.ready && s.proc.worker.isConnected()) out.push(s.proc.worker);
    return out;
  }

  /** Every worker that must follow the config: the serving ones and the standby. */
  private following(): Worker[] {
    const out = this.live();
    if (this.standby?.ready && this.standby.worker.isConnected()) out.push(this.standby.worker);
    return out;
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
      // Imported here, not at start: it brings the whole runtime (undici, isolated-vm), which the
      // primary needs for nothing else, and a primary that starts fast is a Weir that starts fast.
      const { checkConfig } = await import("../config/compile.js");
      const problems = checkConfig(config, this.configFile);
      if (problems.length) throw new ConfigError(problems);
      const standby = this.standby?.ready ? this.standby.worker : null;
      const workers = this.following();
      const answers = await Promise.all(workers.map((w) => this.ask(w, { weir: "reload" })));
      const failed = answers.find((a) => a?.weir === "reload-failed");
      if (failed && failed.weir === "reload-failed") {
        throw Object.assign(new Error(failed.message), { errors: failed.errors ?? [failed.message] });
      }
      if (answers.some((a) => a === null)) this.log.warn("a worker did not answer the reload in time");
      this.config = config;
      this.store.setBounds(storeBounds(config.store));
      this.reloadsTotal.inc({ result: "success" });
      const serving = answers.filter((_, i) => workers[i] !== standby);
      const generation = Math.max(0, ...serving.map((a) => (a?.weir === "reloaded" ? a.generation : 0)));
      this.log.info({ generation, workers: serving.length }, "config reloaded in every worker");
      return { generation };
    } catch (err) {
      this.reloadsTotal.inc({ result: "failure" });
      const errors = err instanceof ConfigError ? err.problems.map(formatProblem) : ((err as { errors?: string[] }).errors ?? [String((err as Error).message)]);
      this.log.error({ configFile: this.configFile, problems: errors }, "config reload failed; the previous config keeps serving");
      throw Object.assign(err as Error, { errors });
    }
  }

  /** Every serving worker's registry and the primary's own, merged by each metric's aggregator. */
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
      { labels: { state: "standby" }, value: this.standby?.ready ? 1 : 0 },
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
        workers: this.slots.map((s) => ({ index: s.index, pid: s.proc?.worker.process.pid ?? null, ready: s.proc?.ready === true, restarts: s.restarts })),
        standby: this.standby === null ? null : { pid: this.standby.worker.process.pid ?? null, ready: this.standby.ready },
      }];
    }
    return [a.status, a.body];
  };

  private all(): Proc[] {
    return [...this.procs.values()];
  }

  /** Drains every worker (each finishes its in-flight requests), then closes the admin API. */
  async stop(): Promise<void> {
    this.stopping = true;
    // New connections are refused from now on; the workers finish the ones they have.
    this.connections.close();
    await this.watcher?.close();
    for (const s of this.slots) if (s.timer) { clearTimeout(s.timer); s.timer = null; }
    if (this.standbyTimer) { clearTimeout(this.standbyTimer); this.standbyTimer = null; }
    const grace = this.config.shutdownTimeout !== undefined ? toMs(this.config.shutdownTimeout) : 10_000;
    const exited = new Promise<void>((r) => { this.stoppedWaiter = r; this.checkStopped(); });
    for (const p of this.all()) p.worker.process.kill("SIGTERM");
    const timer = setTimeout(() => { for (const p of this.all()) p.worker.process.kill("SIGKILL"); }, grace + 2_000);
    await exited;
    clearTimeout(timer);
    await this.admin?.close();
    await this.store.close();
  }

  private stoppedWaiter: (() => void) | null = null;

  private checkStopped(): void {
    if (this.procs.size === 0 && this.stoppedWaiter) this.stoppedWaiter();
  }
}

/** `weir start`. Returns the exit code. */
export async function runPrimary(file: string, count: number, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const configFile = resolve(file);
  let config: WeirConfig;
  // The file's shape is checked here; what only compiling it can find (an unknown upstream, a
  // plugin that does not load) the first worker reports, in the same form, before Weir exits 1.
  try {
    config = loadConfigFile(configFile);
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
    out.write(`weir: ${signal} received, finishing in-flight requests (${count} worker${count > 1 ? "s" : ""})\n`);
    primary.stop().then(() => { out.write("weir: stopped\n"); resolveExit(0); }, (e) => { err.write(`weir: ${e}\n`); resolveExit(1); });
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  try {
    await primary.start();
  } catch (e) {
    const message = (e as Error).message;
    if (e instanceof WeirError) err.write(`weir: ${message} [${e.code}]\n`);
    else if (message !== "") err.write(`weir: ${message}\n`);
    await primary.stop();
    return 1;
  }
  const { listen, admin } = primary.addresses();
  for (const url of listen) out.write(`weir: listening on ${url}${count > 1 ? ` (${count} workers)` : ""}\n`);
  if (admin) out.write(`weir: admin API on ${admin}\n`);
  return exit;
}
