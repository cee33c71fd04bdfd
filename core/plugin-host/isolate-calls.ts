/**
 * The calls of one plugin instance on their way into its isolate and back: queued, sent in
 * batches, one crossing in flight at a time, and every way a crossing can end turned into an
 * outcome per call.
 *
 * Why batches: a crossing into an isolate (isolated-vm's asynchronous `apply`) is two thread
 * hand-offs; the calls that arrive in one turn of the event loop (several requests under load)
 * share one. Why one in flight: while the isolate works, the next calls gather; and a time limit
 * that stops a crossing then stops one known set of calls.
 *
 * What the isolate answers per call (sandbox-main.ts has the records): finished, or awaiting
 * something. What a call awaits is either a capability the host performs (its result goes back in
 * a later crossing, whose time limit then covers the code the plugin runs after its `await`) or
 * the plugin's own promises (the host keeps a `watch` open for their results).
 *
 * How a crossing fails, and what each call gets:
 * - the time limit stopped it: the isolate says what it had finished (those results stand) and
 *   which call was running (that call failed, if it had run for at least half the limit; else it
 *   is sent again); calls it never reached are sent again.
 * - it outran the limit and the margin (a builtin that ignores the limit, a collection near the
 *   memory limit): the isolate is given up and replaced; its calls fail.
 * - the memory limit, a disposed or lost isolate: its calls fail; the instance replaces it.
 * Node's main thread waits for none of these: it only ever hears back.
 */
import type { SandboxIsolate } from "./sandbox-isolate.js";

/**
 * Why a call ended without a result; the instance turns it into a PluginFailure with a message
 * that names the limit. `timeout`: stopped by its time limit; `stuck`: ran past it and could not be
 * stopped; `memory`: over the memory limit; `gone`: the isolate was disposed or lost under it;
 * `async-timeout`: an async hook did not finish within its limit; `rebuilding`: no isolate to run
 * in; `no-result`: the isolate answered nothing for it; `skipped`: the plugin became degraded or
 * quarantined while the call waited.
 */
export interface CallFault {
  fault: "timeout" | "stuck" | "memory" | "gone" | "async-timeout" | "rebuilding" | "no-result" | "skipped";
  detail?: string;
}

export interface CallOutcome {
  /** The result string (see sandbox-main.ts), or the fault. */
  result: string | CallFault;
  /** Milliseconds from the call's dispatch to its outcome. */
  ms: number;
}

interface Call {
  id: number;
  hook: string;
  packed: string;
  done: (o: CallOutcome) => void;
  queuedAt: number;
  /** Capability requests of this call still open. */
  asks: number;
  /** The isolate said the call awaits something. */
  async: boolean;
  asyncTimer: NodeJS.Timeout | null;
  finished: boolean;
  /** Sent in a crossing (a call is sent again when a stopped crossing never reached it). */
  sent: boolean;
}

interface Delivery { capability: number; json: string; call: number }

/** What the instance supplies: the isolate, the capabilities, the limits, and where extras go. */
export interface CallHost {
  sandbox(): SandboxIsolate | null;
  timeoutMs: number;
  asyncTimeoutMs: number;
  /** Runs a capability a call asked for; answers `{ok}` / `{error, code?}` JSON (at once or later). */
  capability(name: string, argsJson: string): string | Promise<string>;
  /** Logs and metrics a call wrote after it finished. */
  extras(hook: string, json: string): void;
  /** The plugin is skipped now (degraded or quarantined): calls not yet sent are not sent. */
  skipping(): boolean;
  /** The sandbox's guards refused an allocation V8 cannot survive or stop (what, in words). */
  refused(what: string): void;
  /** Bytes of WebAssembly memory the isolate reported. */
  wasmBytes(bytes: number): void;
  /** The isolate must be replaced (after its calls were failed). */
  replace(reason: string): void;
  /**
   * A crossing ran past its limit and the margin (V8 has not stopped it): its calls have failed;
   * new calls need another isolate. `ended` settles when the old isolate's crossing ends.
   */
  stuck(sandbox: SandboxIsolate, ended: Promise<unknown>): void;
}

/** Beyond its time limit, how long (of CPU time, checked this often) a crossing may take before its isolate is given up. */
export const STUCK_MARGIN_MS = 100;
/** Beyond its time limit, the wall-clock time after which a crossing's calls fail whatever its CPU time. */
export const STUCK_WALL_CAP_MS = 2000;
/** The most calls one crossing carries. */
const MAX_BATCH = 64;
/** Log-phase calls fill a crossing up to this many calls. */
const MAX_BACKGROUND = 32;

export class IsolateCalls {
  private nextId = 1;
  private queue: Call[] = [];
  /** Calls of the log phase: they cross after the request calls, a bounded number at a time. */
  private background: Call[] = [];
  private deliveries: Delivery[] = [];
  private drops: number[] = [];
  private readonly open = new Map<number, Call>();
  private inFlight: Call[] | null = null;
  private scheduled = false;
  private watching = false;
  /** Hooks whose calls went async before: their crossings wait for them to settle. */
  private readonly settling = new Set<string>();
  /** Calls waiting or open right now. */
  get pending(): number { return this.queue.length + this.background.length + this.open.size; }

  constructor(private readonly host: CallHost) {}

  /**
   * Queues a call; `done` is called exactly once with its outcome. Background calls (the log
   * phase) cross after the request calls waiting with them.
   */
  call(hook: string, packed: string, done: (o: CallOutcome) => void, background = false): void {
    const c: Call = { id: this.nextId++, hook, packed, done, queuedAt: performance.now(), asks: 0, async: false, asyncTimer: null, finished: false, sent: false };
    (background ? this.background : this.queue).push(c);
    this.schedule();
  }

  /** Calls not yet sent end with `fault` (the plugin is skipped from now on); sent ones go on. */
  dropQueued(fault: CallFault): void {
    const calls = [...this.queue, ...this.background];
    this.queue = [];
    this.background = [];
    for (const c of calls) this.finish(c, fault);
  }

  /** Every call not finished fails with `fault` (the isolate is gone). */
  failAll(fault: CallFault): void {
    const calls = [...this.queue, ...this.background, ...this.open.values()];
    this.queue = [];
    this.background = [];
    this.deliveries = [];
    this.drops = [];
    this.inFlight = null;
    this.watching = false;
    for (const c of calls) this.finish(c, fault);
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight !== null) return;
    this.scheduled = true;
    // Calls made in this turn of the event loop cross together.
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.inFlight !== null) return;
    if (!this.work()) return;
    if (this.host.skipping()) this.dropQueued({ fault: "skipped" });
    const sandbox = this.host.sandbox();
    if (sandbox === null || sandbox.disposed) {
      this.failAll({ fault: "rebuilding" });
      return;
    }
    let inbox = "";
    for (const id of this.drops) inbox += "x" + id + ":0:";
    this.drops = [];
    let settle = false;
    for (const d of this.deliveries) {
      if (!this.open.has(d.call)) continue;
      inbox += "r" + d.capability + ":" + d.json.length + ":" + d.json;
      settle = true;
    }
    const delivered = this.deliveries.map((d) => d.call);
    this.deliveries = [];
    const batch = this.queue.splice(0, MAX_BATCH);
    if (batch.length < MAX_BACKGROUND) batch.push(...this.background.splice(0, MAX_BACKGROUND - batch.length));
    for (const c of batch) {
      inbox += "c" + c.id + ":" + c.packed.length + ":" + c.packed;
      c.sent = true;
      this.open.set(c.id, c);
      if (this.settling.has(c.hook)) settle = true;
    }
    this.inFlight = batch;
    const timeout = this.host.timeoutMs;
    const crossing = sandbox.exchange(inbox, timeout, settle);
    const stuck = this.watchdog(sandbox, batch, timeout, crossing);
    crossing.then(
      (out) => {
        stuck.cancel();
        if (this.inFlight !== batch) return;
        this.inFlight = null;
        this.read(out);
        this.afterCrossing(batch);
      },
      (err: unknown) => {
        stuck.cancel();
        if (this.inFlight !== batch) return;
        this.crossingFailed(sandbox, batch, delivered, err);
      },
    );
  };

  /** A crossing ended: calls it should have answered and did not are a fault; then go on. */
  private afterCrossing(batch: Call[]): void {
    for (const c of batch) if (!c.finished && !c.async && c.sent) this.finish(c, { fault: "no-result" });
    this.armWatch();
    if (this.work()) this.flush();
  }

  private work(): boolean {
    return this.queue.length > 0 || this.background.length > 0 || this.deliveries.length > 0 || this.drops.length > 0;
  }

  private crossingFailed(sandbox: SandboxIsolate, batch: Call[], delivered: number[], err: unknown): void {
    const message = String((err as Error)?.message ?? err);
    if (!/timed out/i.test(message) || sandbox.disposed) {
      this.inFlight = null;
      this.failAll({ fault: /memory limit/i.test(message) ? "memory" : "gone", detail: message.slice(0, 300) });
      this.host.replace(message);
      return;
    }
    // Stopped by the time limit: ask what it had done before.
    sandbox.salvage().then((out) => {
      if (this.inFlight !== batch) return;
      this.inFlight = null;
      const running = this.read(out);
      if (running !== null && running !== "resumed") {
        // Stopped inside a hook: that hook failed, if it had run for at least half the limit
        // (else the calls before it used the time, and it goes again).
        const c = this.open.get(running.id);
        if (c !== undefined && !c.finished) {
          if (running.ms >= this.host.timeoutMs / 2) this.finish(c, { fault: "timeout" });
          else this.requeue(c);
        }
      } else {
        // Stopped while hooks resumed after an await (or after their first microtask turn): those
        // hooks ran past the limit.
        for (const c of batch) if (c.async && !c.finished) this.finish(c, { fault: "timeout" });
        for (const id of delivered) { const c = this.open.get(id); if (c && !c.finished) this.finish(c, { fault: "timeout" }); }
      }
      // Calls the crossing never reached go again, in their order.
      const notReached = batch.filter((c) => !c.finished && !c.async && this.open.has(c.id));
      for (let i = notReached.length - 1; i >= 0; i--) this.requeue(notReached[i]!);
      this.afterCrossing([]);
    }, () => {
      if (this.inFlight !== batch) return;
      this.inFlight = null;
      this.failAll({ fault: "stuck" });
      this.host.replace("the isolate did not answer after its time limit");
    });
  }

  private requeue(c: Call): void {
    this.open.delete(c.id);
    c.sent = false;
    (c.hook === "onLog" ? this.background : this.queue).unshift(c);
  }

  /**
   * Gives the isolate up when a crossing outruns its limit and the margin. Outrunning means using
   * the CPU: an isolate whose thread was not scheduled (a loaded machine) has not had the chance
   * to notice its limit yet, so the watchdog looks again, until the CPU time it used says V8
   * could not stop it, or a hard wall-clock cap.
   */
  private watchdog(sandbox: SandboxIsolate, batch: Call[], timeout: number, crossing: Promise<unknown>): { cancel(): void } {
    const cpuAtStart = sandbox.cpuTimeMs();
    const startedAt = performance.now();
    let timer: NodeJS.Timeout;
    const check = (): void => {
      if (this.inFlight !== batch) return;
      const cpu = sandbox.cpuTimeMs() - cpuAtStart;
      const wall = performance.now() - startedAt;
      if (cpu >= timeout + STUCK_MARGIN_MS / 2 || wall >= timeout + STUCK_WALL_CAP_MS) this.stuck(sandbox, batch, crossing);
      else timer = setTimeout(check, STUCK_MARGIN_MS);
    };
    timer = setTimeout(check, timeout + STUCK_MARGIN_MS);
    return { cancel: () => clearTimeout(timer) };
  }

  /** The crossing outran its limit and the margin: its calls fail now, without waiting for V8. */
  private stuck(sandbox: SandboxIsolate, batch: Call[], crossing: Promise<unknown>): void {
    if (this.inFlight !== batch) return;
    this.inFlight = null;
    this.failAll({ fault: "stuck" });
    this.host.stuck(sandbox, crossing.then(() => undefined, () => undefined));
  }

  /**
   * Applies an outbox; returns the `k` record (the call a time limit stopped), or "resumed" for a
   * `t` record, if any.
   */
  private read(out: string): { id: number; ms: number } | "resumed" | null {
    let running: { id: number; ms: number } | "resumed" | null = null;
    let p = 0;
    while (p < out.length) {
      const kind = out[p]!;
      const colon = out.indexOf(":", p + 1);
      const colon2 = out.indexOf(":", colon + 1);
      if (colon < 0 || colon2 < 0) break;
      const id = Number(out.slice(p + 1, colon));
      const length = Number(out.slice(colon + 1, colon2));
      const payload = out.slice(colon2 + 1, colon2 + 1 + length);
      p = colon2 + 1 + length;
      switch (kind) {
        case "d": { const c = this.open.get(id); if (c) this.finish(c, payload); break; }
        case "a": { const c = this.open.get(id); if (c && !c.finished) this.awaiting(c); break; }
        case "q": this.ask(id, payload); break;
        case "z": { const c = this.open.get(id); this.host.extras(c?.hook ?? "onLog", payload); break; }
        case "w": this.host.wasmBytes(Number(payload)); break;
        case "g": this.host.refused(payload); break;
        case "k": running = { id, ms: Number(payload) }; break;
        case "t": running = "resumed"; break;
      }
    }
    return running;
  }

  private awaiting(c: Call): void {
    if (c.async) return;
    c.async = true;
    this.settling.add(c.hook);
    const left = Math.max(1, this.host.asyncTimeoutMs - (performance.now() - c.queuedAt));
    c.asyncTimer = setTimeout(() => {
      if (c.finished) return;
      // isolated-vm never times out a pending promise: we give up on it and tell the isolate to
      // forget it (a late result is not sent). The isolate itself is not busy (a pending promise
      // runs nothing), so it keeps serving.
      this.drops.push(c.id);
      this.finish(c, { fault: "async-timeout" });
      this.schedule();
    }, left);
  }

  /** A capability request of call `payload`'s owner: performed now, answered in a later crossing. */
  private ask(capability: number, payload: string): void {
    const a = payload.indexOf("\u0000");
    const b = payload.indexOf("\u0000", a + 1);
    const owner = Number(payload.slice(0, a));
    const c = this.open.get(owner);
    if (!c || c.finished) return;
    c.asks++;
    const answer = (json: string) => {
      c.asks--;
      if (c.finished) return;
      this.deliveries.push({ capability, json, call: owner });
      this.schedule();
    };
    let r: string | Promise<string>;
    try {
      r = this.host.capability(payload.slice(a + 1, b), payload.slice(b + 1));
    } catch (err) {
      r = JSON.stringify({ error: String((err as Error)?.message ?? err) });
    }
    if (typeof r === "string") answer(r);
    else r.then(answer, (err: unknown) => answer(JSON.stringify({ error: String((err as Error)?.message ?? err) })));
  }

  /** Open async calls that wait on nothing of the host's finish on their own: keep a watch open. */
  private armWatch(): void {
    if (this.watching) return;
    let needed = false;
    for (const c of this.open.values()) if (c.async && !c.finished && c.asks === 0) { needed = true; break; }
    if (!needed) return;
    const sandbox = this.host.sandbox();
    if (sandbox === null || sandbox.disposed) return;
    this.watching = true;
    sandbox.watch().then((out) => {
      this.watching = false;
      this.read(out);
      this.armWatch();
      if (this.work()) this.schedule();
    }, () => { this.watching = false; });
  }

  private finish(c: Call, result: string | CallFault): void {
    if (c.finished) return;
    c.finished = true;
    this.open.delete(c.id);
    if (c.asyncTimer !== null) clearTimeout(c.asyncTimer);
    c.done({ result, ms: performance.now() - c.queuedAt });
  }
}
