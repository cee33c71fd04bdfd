/**
 * The only module that touches isolated-vm: one V8 isolate running one plugin instance.
 * Keeping it behind this small surface (create, run, settle, dispose) is what would let us move
 * to another sandbox without touching the rest.
 *
 * Only primitive strings and numbers cross in either direction. The host's capability function
 * is handed in as a Reference that the sandbox bootstrap captures and removes from the global.
 */
import ivm from "isolated-vm";
import { sandboxSource } from "./sandbox-main.js";

export type HostCall = (name: string, argsJson: string) => Promise<string>;

export interface SandboxOptions {
  memoryMb: number;
  /** The plugin's bundled JavaScript (an IIFE assigning globalThis.__weirPluginModule). */
  code: string;
  filename: string;
  hostCall: HostCall;
  /** Time limit for loading the bundle. */
  loadTimeoutMs?: number;
}

const bootstrap = sandboxSource();

export class SandboxIsolate {
  private constructor(
    private readonly isolate: ivm.Isolate,
    private readonly context: ivm.Context,
    private readonly runRef: ivm.Reference<(packed: string) => string>,
    private readonly settleRef: ivm.Reference<(id: number) => Promise<string>>,
    private readonly dropRef: ivm.Reference<(id: number) => void>,
    private readonly configureRef: ivm.Reference<(config: string, granted: string) => void>,
    private readonly batchRef: ivm.Reference<(joined: string) => string>,
    /** The manifest JSON the plugin's definition produced. */
    readonly manifestJson: string,
  ) {}

  static async create(o: SandboxOptions): Promise<SandboxIsolate> {
    const isolate = new ivm.Isolate({ memoryLimit: o.memoryMb });
    try {
      const context = await isolate.createContext();
      await context.global.set("__weirHostCall", new ivm.Reference(o.hostCall));
      const timeout = o.loadTimeoutMs ?? 2000;
      await context.eval(bootstrap, { timeout });
      // Take the bootstrap's entry points, then remove them from the global before any plugin code
      // runs: a plugin must not be able to call run/configure/settle on itself.
      const ref = async <T>(name: string) => (await context.eval(`__weir.${name}`, { reference: true })) as ivm.Reference<T>;
      const manifestRef = await ref<() => string>("manifest");
      const configureRef = await ref<(config: string, granted: string) => void>("configure");
      const runRef = await ref<(p: string) => string>("run");
      const settleRef = await ref<(id: number) => Promise<string>>("settle");
      const dropRef = await ref<(id: number) => void>("drop");
      const batchRef = await ref<(joined: string) => string>("runBatch");
      await context.eval("delete globalThis.__weir", { timeout });
      const script = await isolate.compileScript(o.code, { filename: o.filename });
      await script.run(context, { timeout });
      script.release();
      const manifestJson = manifestRef.applySync(undefined, [], { timeout }) as string;
      manifestRef.release();
      return new SandboxIsolate(isolate, context, runRef, settleRef, dropRef, configureRef, batchRef, manifestJson);
    } catch (err) {
      if (!isolate.isDisposed) isolate.dispose();
      throw err;
    }
  }

  /** Hands the validated config and the granted permissions to the plugin. */
  configure(configJson: string, grantedJson: string): void {
    this.configureRef.applySync(undefined, [configJson, grantedJson], { timeout: 1000 });
  }

  /** Runs one hook synchronously under the time limit; returns the sandbox's result string. */
  run(packed: string, timeoutMs: number): string {
    const r = this.runRef.applySync(undefined, [packed], { timeout: timeoutMs });
    if (typeof r !== "string") throw new Error("the sandbox returned a non-string result");
    return r;
  }

  /** Runs several hooks in one crossing; one result per call, in order. */
  runBatch(packed: string[], timeoutMs: number): string[] {
    const r = this.batchRef.applySync(undefined, [packed.join("\u0002")], { timeout: timeoutMs });
    if (typeof r !== "string") throw new Error("the sandbox returned a non-string result");
    return r.split("\u0002");
  }

  /**
   * Same as runBatch, but the isolate runs the calls on its own thread and Node's event loop goes
   * on meanwhile (isolated-vm `apply`): for log-phase work, which must never hold up requests.
   */
  async runBatchAsync(packed: string[], timeoutMs: number): Promise<string[]> {
    const r: unknown = await this.batchRef.apply(undefined, [packed.join("\u0002")], { timeout: timeoutMs });
    if (typeof r !== "string") throw new Error("the sandbox returned a non-string result");
    return r.split("\u0002");
  }

  /** Waits for an async hook's result. The caller owns the wall-clock watchdog. */
  settle(id: number): Promise<string> {
    return this.settleRef.apply(undefined, [id], { result: { promise: true, copy: true } }) as unknown as Promise<string>;
  }

  /** Forgets an async call the host gave up on. */
  drop(id: number): void {
    if (!this.isolate.isDisposed) this.dropRef.applyIgnored(undefined, [id]);
  }

  get disposed(): boolean {
    return this.isolate.isDisposed;
  }

  /** Bytes of V8 heap in use (what counts against memoryMb). */
  heapUsed(): number {
    if (this.isolate.isDisposed) return 0;
    const s = this.isolate.getHeapStatisticsSync();
    return s.used_heap_size + s.externally_allocated_size;
  }

  /** CPU time the isolate has used, in ms. */
  cpuTimeMs(): number {
    return this.isolate.isDisposed ? 0 : Number(this.isolate.cpuTime) / 1e6;
  }

  dispose(): void {
    if (!this.isolate.isDisposed) {
      try { this.context.release(); } catch { /* already gone with the isolate */ }
      this.isolate.dispose();
    }
  }
}
