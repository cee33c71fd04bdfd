/**
 * The only module that uses isolated-vm (isolated-vm-line.ts picks the build for this Node): one V8
 * isolate running one plugin instance.
 * Keeping it behind this small surface (create, exchange, watch, dispose) is what would let us
 * move to another sandbox without touching the rest.
 *
 * Node's main thread never waits on an isolate: every call in is isolated-vm's asynchronous
 * `apply`, which runs on the isolate's own thread while the event loop goes on, and every call
 * carries a time limit. (A synchronous call takes the isolate's lock on the main thread: if the
 * isolate is busy — code after an `await`, a builtin that ignores the time limit, a garbage
 * collection near the memory limit — the whole proxy waits with it.) Only strings cross, in both
 * directions (sandbox-main.ts has the wire format); the isolate holds no reference to the host.
 */
import type IsolatedVm from "isolated-vm";
import { isolatedVm } from "./isolated-vm-line.js";
import { sandboxGuards } from "./sandbox-guards.js";
import { sandboxSource } from "./sandbox-main.js";

export interface SandboxOptions {
  memoryMb: number;
  /** WebAssembly, SharedArrayBuffer and Atomics are there only when granted. */
  wasm?: boolean;
  /** The plugin's bundled JavaScript (an IIFE assigning globalThis.__weirPluginModule). */
  code: string;
  filename: string;
  /** Time limit for loading the bundle (its top-level code). */
  loadTimeoutMs?: number;
  /**
   * V8 could not go on (an allocation it cannot survive): the isolate's thread is lost for good
   * and the isolate must be abandoned, never used or disposed again.
   */
  onCatastrophe?: (message: string) => void;
}

/** The time limit a plugin's top-level code gets while it loads (a plugin entry's `limits.loadTimeoutMs`). */
export const DEFAULT_LOAD_TIMEOUT_MS = 2000;

const guardsSource = sandboxGuards.toString();

type ExchangeRef = IsolatedVm.Reference<(inbox: string) => string>;

export class SandboxIsolate {
  private catastrophic = false;
  /** Heap bytes in use as last read (reading it takes the isolate's lock, so it is read asynchronously). */
  private heapBytes = 0;
  private heapReading: Promise<void> | null = null;
  private heapReadAt = 0;

  private constructor(
    private readonly isolate: IsolatedVm.Isolate,
    private readonly exchangeRef: ExchangeRef,
    private readonly settledRef: IsolatedVm.Reference<(inbox: string) => Promise<string>>,
    private readonly salvageRef: IsolatedVm.Reference<() => string>,
    private readonly watchRef: IsolatedVm.Reference<() => Promise<string>>,
    private readonly configureRef: IsolatedVm.Reference<(config: string, granted: string) => void>,
    /** The manifest JSON the plugin's definition produced. */
    readonly manifestJson: string,
  ) {}

  static async create(o: SandboxOptions): Promise<SandboxIsolate> {
    let self: SandboxIsolate | null = null;
    let lost: string | null = null;
    const ivm = isolatedVm();
    const isolate = new ivm.Isolate({
      memoryLimit: o.memoryMb,
      onCatastrophicError: (message: string) => {
        lost = message;
        if (self !== null) self.catastrophic = true;
        o.onCatastrophe?.(message);
      },
    });
    try {
      const context = await isolate.createContext();
      const timeout = o.loadTimeoutMs ?? DEFAULT_LOAD_TIMEOUT_MS;
      await context.eval(sandboxSource(guardsSource, { memoryBytes: o.memoryMb * 1048576, wasm: o.wasm === true }), { timeout });
      // Take the bootstrap's entry points, then remove them from the global before any plugin code
      // runs: a plugin must not be able to call exchange/configure on itself.
      const ref = async <T>(name: string) => (await context.eval(`__weir.${name}`, { reference: true })) as IsolatedVm.Reference<T>;
      const manifestRef = await ref<() => string>("manifest");
      const configureRef = await ref<(config: string, granted: string) => void>("configure");
      const exchangeRef = await ref<(inbox: string) => string>("exchange");
      const settledRef = await ref<(inbox: string) => Promise<string>>("exchangeSettled");
      const salvageRef = await ref<() => string>("salvage");
      const watchRef = await ref<() => Promise<string>>("watch");
      await context.eval("delete globalThis.__weir", { timeout });
      const script = await isolate.compileScript(o.code, { filename: o.filename });
      await script.run(context, { timeout });
      script.release();
      const manifestJson = (await manifestRef.apply(undefined, [], { timeout })) as string;
      manifestRef.release();
      if (lost !== null) throw new Error(lost);
      self = new SandboxIsolate(isolate, exchangeRef, settledRef, salvageRef, watchRef, configureRef, manifestJson);
      return self;
    } catch (err) {
      // A lost isolate is never disposed: its thread holds the isolate's lock for good.
      if (lost === null && !isolate.isDisposed) isolate.dispose();
      throw err;
    }
  }

  /** Hands the validated config and the granted permissions to the plugin. */
  async configure(configJson: string, grantedJson: string): Promise<void> {
    await this.configureRef.apply(undefined, [configJson, grantedJson], { timeout: 1000 });
  }

  /**
   * One crossing: the isolate runs the inbox's records on its own thread under `timeoutMs` and
   * answers its outbox. `settle` waits a few microtask turns first (for inboxes that resume
   * awaiting hooks).
   */
  exchange(inbox: string, timeoutMs: number, settle: boolean): Promise<string> {
    const p = settle
      ? (this.settledRef.apply(undefined, [inbox], { timeout: timeoutMs, result: { promise: true } }) as Promise<unknown>)
      : (this.exchangeRef.apply(undefined, [inbox], { timeout: timeoutMs }) as Promise<unknown>);
    return p.then((r) => {
      if (typeof r !== "string") throw new Error("the sandbox returned a non-string result");
      return r;
    });
  }

  /** After an exchange was stopped by its time limit: what it had done, and what was running. */
  salvage(): Promise<string> {
    return this.salvageRef.apply(undefined, [], { timeout: 50 }) as Promise<string>;
  }

  /** Resolves with the records the isolate made outside a crossing (async hooks finishing). */
  watch(): Promise<string> {
    return this.watchRef.apply(undefined, [], { timeout: 50, result: { promise: true } }) as Promise<string>;
  }

  get disposed(): boolean {
    return this.catastrophic || this.isolate.isDisposed;
  }

  /** V8 gave up on this isolate (see SandboxOptions.onCatastrophe). */
  get lost(): boolean {
    return this.catastrophic;
  }

  /**
   * Bytes of V8 heap in use (what counts against memoryMb), as last read; a read is started when
   * the last one is older than `maxAgeMs`. Never waits for the isolate.
   */
  heapUsed(maxAgeMs = 1000): number {
    if (this.disposed) return 0;
    const now = Date.now();
    if (this.heapReading === null && now - this.heapReadAt >= maxAgeMs) {
      this.heapReadAt = now;
      this.heapReading = this.isolate.getHeapStatistics().then(
        (s) => { this.heapBytes = s.used_heap_size + s.externally_allocated_size; },
        () => undefined,
      ).finally(() => { this.heapReading = null; });
    }
    return this.heapBytes;
  }

  /** Reads the heap in use now (waits for the isolate, never blocking the event loop). */
  async readHeap(): Promise<number> {
    if (this.disposed) return 0;
    const s = await this.isolate.getHeapStatistics();
    this.heapBytes = s.used_heap_size + s.externally_allocated_size;
    this.heapReadAt = Date.now();
    return this.heapBytes;
  }

  /** CPU time the isolate has used, in ms (a counter, read without the isolate's lock). */
  cpuTimeMs(): number {
    return this.disposed ? 0 : Number(this.isolate.cpuTime) / 1e6;
  }

  /**
   * Ends the isolate. Whatever it runs is terminated; calls in flight reject. A lost isolate is
   * left alone: disposing it would wait for a thread that never returns.
   */
  dispose(): void {
    if (this.catastrophic || this.isolate.isDisposed) return;
    this.isolate.dispose();
  }
}
