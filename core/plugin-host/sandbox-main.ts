/**
 * The code that runs inside every plugin isolate before the plugin's own bundle. It is written as
 * a self-contained function and sent to the isolate as source (`sandboxSource`), so it may use no
 * import and no outer variable.
 *
 * Safety rules it enforces (ANCHORS.md): only strings cross the boundary, and every result is
 * serialised to JSON *here*, inside the isolate and under the call's timeout, so a looping getter
 * or a thrown Proxy burns the plugin's time, never a host thread. The host's References are kept
 * in this closure, out of reach of plugin code.
 *
 * Wire format of one call: `run(packed)` where packed is NUL-separated fields (see FIELDS);
 * it returns "" (nothing changed), "\u0001ID" (the hook is async: call settle(ID)), or JSON
 * `{h?, p?, s?, r?, v?, c?, l?, e?}` (headers, path, status, respond, vars, consumer, logs, error).
 */
declare const globalThis: Record<string, unknown>;

interface HostRef {
  apply(receiver: undefined, args: unknown[], options: { result: { promise: true; copy: true } }): Promise<unknown>;
  /** For the synchronous capabilities (ctx.rateLimit in-process): the host answers a string at once. */
  applySync(receiver: undefined, args: unknown[]): unknown;
}

export function sandboxMain(g: Record<string, unknown>, hostCall: HostRef): void {
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const PromiseCtor = Promise;
  const MAX_LOGS = 20;
  let plugin: Record<string, unknown> | null = null;
  let config: unknown = {};
  let granted: { store?: boolean; fetch?: string[]; jwt?: boolean } = {};
  const pending = new Map<number, Promise<string>>();
  let nextId = 1;

  function describe(e: unknown): string {
    try {
      if (e && typeof e === "object" && "message" in e) return String((e as { message: unknown }).message).slice(0, 500);
      return "non-Error value thrown: " + String(e).slice(0, 200);
    } catch {
      return "an unprintable value was thrown";
    }
  }

  class Hdrs {
    list: string[] | null = null;
    dirty = false;
    /** In pending mode (response headers set in onRequest) the operations, in order. */
    ops: string[][] | null = null;
    constructor(private block: string, pending = false) { if (pending) this.ops = []; }
    private l(): string[] {
      if (this.list === null) this.list = this.block === "" ? [] : this.block.split("\n");
      return this.list;
    }
    get(name: string): string | undefined {
      const n = String(name).toLowerCase();
      const l = this.l();
      let out: string | undefined;
      for (let i = 0; i < l.length; i += 2) if (l[i]!.toLowerCase() === n) out = out === undefined ? l[i + 1] : out + ", " + l[i + 1];
      return out;
    }
    has(name: string): boolean { return this.get(name) !== undefined; }
    delete(name: string): void {
      const n = String(name).toLowerCase();
      const l = this.l();
      const out: string[] = [];
      for (let i = 0; i < l.length; i += 2) if (l[i]!.toLowerCase() !== n) out.push(l[i]!, l[i + 1]!);
      if (out.length !== l.length) { this.list = out; this.dirty = true; }
      this.ops?.push(["d", String(name)]);
    }
    set(name: string, value: string): void { this.delete(name); this.append(name, value); }
    append(name: string, value: string): void {
      this.l().push(String(name), String(value));
      this.dirty = true;
      this.ops?.push(["a", String(name), String(value)]);
    }
    entries(): [string, string][] {
      const l = this.l();
      const out: [string, string][] = [];
      for (let i = 0; i < l.length; i += 2) out.push([l[i]!, l[i + 1]!]);
      return out;
    }
  }

  function call(name: string, args: unknown[]): Promise<unknown> {
    return hostCall.apply(undefined, [name, stringify(args)], { result: { promise: true, copy: true } }).then((r) => {
      const v = parse(r as string) as { ok?: unknown; error?: string; code?: string };
      if (v.error !== undefined) {
        // Errors are branded by a stable code (e.g. WEIR_ERR_JWKS_UNAVAILABLE), not by class.
        const e = new Error(v.error) as Error & { code?: string };
        if (v.code !== undefined) e.code = v.code;
        throw e;
      }
      return v.ok;
    });
  }
  /**
   * ctx.rateLimit: one synchronous host call answered from the in-process store, so the hook stays
   * synchronous; when the store is Redis the host says so and we make the async call instead.
   */
  function rateLimit(key: unknown, o: { limit?: unknown; windowMs?: unknown; onStoreError?: unknown } | undefined): unknown {
    const args = [String(key), o?.limit, o?.windowMs, o?.onStoreError === "closed" ? "closed" : "open"];
    const v = parse(hostCall.applySync(undefined, ["rateLimit", stringify(args)]) as string) as { ok?: unknown; error?: string; async?: true };
    if (v.error !== undefined) throw new Error(v.error);
    if (v.async) return call("rateLimit.async", args);
    return v.ok;
  }
  /**
   * ctx.metrics: during a hook's synchronous run the update rides back with the result (no extra
   * crossing; the host applies it and logs a bad one); outside it (after an await) it is one
   * synchronous host call.
   */
  function metric(op: string, name: unknown, value: unknown, labels: unknown): void {
    if (current !== null) {
      if (typeof name !== "string" || typeof value !== "number") throw new Error("ctx.metrics: a metric needs a name (string) and a number");
      (current.metricOps ??= []).push([op === "metrics.increment" ? 0 : 1, name, value, labels ?? null]);
      return;
    }
    const v = parse(hostCall.applySync(undefined, [op, stringify([String(name), value, labels ?? null])]) as string) as { error?: string };
    if (v.error !== undefined) throw new Error(v.error);
  }
  function denied(what: string): never {
    throw new Error(`ctx.${what} needs a permission this plugin was not granted; declare it in definePlugin({ permissions }) and grant it in the route entry's permissions:`);
  }

  /** The context whose hook is running synchronously right now (metrics are buffered on it). */
  let current: Ctx | null = null;

  // Capabilities do not depend on the request: built once per configure(), not per call.
  let caps: Record<string, unknown> = {};
  function buildCaps(): void {
    caps = {
      store: {
        get: (k: string) => (granted.store ? call("store.get", [String(k)]) : denied("store")),
        set: (k: string, v: string, o?: { ttlMs?: number }) => (granted.store ? call("store.set", [String(k), String(v), o?.ttlMs ?? 0]) : denied("store")),
        incr: (k: string, by?: number, o?: { ttlMs?: number }) => (granted.store ? call("store.incr", [String(k), by ?? 1, o?.ttlMs ?? 0]) : denied("store")),
        delete: (k: string) => (granted.store ? call("store.delete", [String(k)]) : denied("store")),
      },
      fetch: (url: string, init?: unknown) => (granted.fetch && granted.fetch.length ? call("fetch", [String(url), init ?? {}]) : denied("fetch")),
      jwt: { verify: (token: string, options: unknown) => (granted.jwt ? call("jwt.verify", [String(token), options ?? {}]) : denied("jwt")) },
      rateLimit: (key: string, o?: { limit?: unknown; windowMs?: unknown; onStoreError?: unknown }) => (granted.store ? rateLimit(key, o) : denied("rateLimit (permission store)")),
      metrics: {
        increment: (name: string, by?: number, labels?: Record<string, string>) => metric("metrics.increment", name, by ?? 1, labels),
        observe: (name: string, value: number, labels?: Record<string, string>) => metric("metrics.observe", name, value, labels),
      },
    };
  }
  buildCaps();

  // Fields of a packed call, in order.
  // 0 phase, 1 method, 2 path, 3 query, 4 request headers, 5 client ip, 6 route name, 7 params JSON,
  // 8 consumer ("" for none), 9 vars JSON, 10 request id, 11 status, 12 response headers,
  // 13 timing JSON
  //
  // The context is a class with getters on its prototype and everything parsed on first use: a
  // hook that reads one header pays for one split, not for a dozen closures and JSON parses.
  class Req {
    private h: Hdrs | null = null;
    constructor(private readonly c: Ctx) {}
    get method(): string { return this.c.f[1]!; }
    get path(): string { return this.c.outPath ?? this.c.f[2]!; }
    set path(v: string) {
      if (this.c.phase !== "onRequest") throw new Error("ctx.request.path can only be changed in onRequest");
      this.c.outPath = String(v);
    }
    get query(): string { return this.c.f[3]!; }
    get headers(): Hdrs { return (this.h ??= this.c.reqHeaders = new Hdrs(this.c.f[4]!)); }
  }
  class Res {
    private h: Hdrs | null = null;
    constructor(private readonly c: Ctx) {}
    get status(): number { return this.c.outStatus ?? Number(this.c.f[11] || 0); }
    set status(v: number) {
      if (this.c.phase !== "onResponse") throw new Error("ctx.response.status can only be changed in onResponse");
      this.c.outStatus = Number(v);
    }
    /**
     * In onResponse: the response's headers. In onRequest there is no response yet: the headers
     * set here are applied to the response when it comes (the upstream's or a local one), which
     * saves a plugin an onResponse hook (one isolate crossing) just to add headers.
     */
    get headers(): Hdrs { return (this.h ??= this.c.resHeaders = new Hdrs(this.c.f[12] ?? "", this.c.phase === "onRequest")); }
  }
  class Ctx {
    outPath: string | undefined = undefined;
    outStatus: number | undefined = undefined;
    outRespond: unknown = undefined;
    consumerSet = false;
    private consumerValue: string | null = null;
    varsValue: Record<string, unknown> | undefined = undefined;
    logs: string[][] | null = null;
    metricOps: unknown[][] | null = null;
    reqHeaders: Hdrs | null = null;
    resHeaders: Hdrs | null = null;
    private req: Req | null = null;
    private res: Res | null = null;
    private logApi: unknown = null;
    constructor(readonly f: string[], readonly phase: string) {}
    get request(): Req { return (this.req ??= new Req(this)); }
    get response(): Res { return (this.res ??= new Res(this)); }
    respond(s: number, body?: unknown, headers?: Record<string, string>): void {
      if (this.phase !== "onRequest" && this.phase !== "onResponse") throw new Error(`ctx.respond cannot be used in ${this.phase}; it is available in onRequest and onResponse`);
      const h: string[] = [];
      if (headers) for (const k of Object.keys(headers)) h.push(String(k), String(headers[k]));
      const b = body === undefined ? "" : typeof body === "string" ? body : stringify(body);
      this.outRespond = { s: Number(s), b, h, j: body !== undefined && typeof body !== "string" };
    }
    get config(): unknown { return config; }
    get vars(): Record<string, unknown> { return (this.varsValue ??= this.f[9] ? parse(this.f[9]) : {}); }
    get route(): { name: string; params: Record<string, string> } {
      const f = this.f;
      return { name: f[6]!, get params() { return f[7] ? parse(f[7]) : {}; } };
    }
    get client(): { ip: string } { return { ip: this.f[5]! }; }
    get consumer(): string | null { return this.consumerSet ? this.consumerValue : this.f[8] === "" ? null : this.f[8]!; }
    set consumer(v: string | null) { this.consumerValue = v === null || v === undefined ? null : String(v); this.consumerSet = true; }
    get requestId(): string { return this.f[10]!; }
    get timing(): { total: number; upstream: number } { return this.f[13] ? parse(this.f[13]) : { total: 0, upstream: 0 }; }
    get log(): unknown {
      if (this.logApi === null) {
        const line = (level: string) => (message: unknown, fields?: unknown) => {
          const logs = (this.logs ??= []);
          if (logs.length < MAX_LOGS) logs.push([level, String(message), fields === undefined ? "" : stringify(fields)]);
        };
        this.logApi = { debug: line("debug"), info: line("info"), warn: line("warn"), error: line("error") };
      }
      return this.logApi;
    }
    get store(): unknown { return caps.store; }
    get fetch(): unknown { return caps.fetch; }
    get jwt(): unknown { return caps.jwt; }
    get rateLimit(): unknown { return caps.rateLimit; }
    get metrics(): unknown { return caps.metrics; }
  }

  /** The call's outcome as the wire string: "" when the hook changed nothing. */
  function finish(c: Ctx): string {
    let r: Record<string, unknown> | null = null;
    if (c.phase === "onRequest" && c.reqHeaders?.dirty) (r ??= {}).h = c.reqHeaders.list;
    if (c.phase === "onResponse" && c.resHeaders?.dirty) (r ??= {}).h = c.resHeaders.list;
    if (c.phase === "onRequest" && c.resHeaders?.ops?.length) (r ??= {}).ro = c.resHeaders.ops;
    if (c.metricOps !== null) (r ??= {}).m = c.metricOps;
    if (c.outPath !== undefined) (r ??= {}).p = c.outPath;
    if (c.outStatus !== undefined) (r ??= {}).s = c.outStatus;
    if (c.outRespond !== undefined) (r ??= {}).r = c.outRespond;
    if (c.consumerSet) (r ??= {}).c = c.consumer;
    if (c.varsValue !== undefined) {
      const v = stringify(c.varsValue);
      if (v !== (c.f[9] || "{}")) (r ??= {}).v = v;
    }
    if (c.logs !== null) (r ??= {}).l = c.logs;
    return r === null ? "" : stringify(r);
  }

  g.__weir = {
    /** Reads the plugin's definition once its bundle ran; returns the manifest as JSON. */
    manifest(): string {
      const mod = g.__weirPluginModule as { default?: unknown } | undefined;
      delete g.__weirPluginModule;
      const def = (mod && typeof mod === "object" && "default" in mod ? mod.default : mod) as Record<string, unknown> | undefined;
      if (!def || typeof def !== "object") return stringify({ error: "the plugin file must `export default definePlugin({...})`" });
      plugin = def;
      const hooks: string[] = [];
      for (const h of ["onRequest", "onResponse", "onLog"]) {
        if (def[h] !== undefined && typeof def[h] !== "function") return stringify({ error: `${h} must be a function` });
        if (typeof def[h] === "function") hooks.push(h);
      }
      return stringify({ name: def.name, version: def.version, hooks, configSchema: def.configSchema ?? null, permissions: def.permissions ?? {} });
    },
    configure(configJson: string, grantedJson: string): void {
      config = parse(configJson);
      granted = parse(grantedJson);
      buildCaps();
    },
    run(packed: string): string {
      const f = packed.split("\u0000");
      const phase = f[0]!;
      const ctx = new Ctx(f, phase);
      try {
        current = ctx;
        let result: unknown;
        try { result = (plugin![phase] as (c: unknown) => unknown)(ctx); } finally { current = null; }
        if (result && typeof (result as { then?: unknown }).then === "function") {
          const id = nextId++;
          pending.set(id, PromiseCtor.resolve(result).then(() => finish(ctx), (e: unknown) => stringify({ e: describe(e) })));
          return "\u0001" + id;
        }
        return finish(ctx);
      } catch (e) {
        return stringify({ e: describe(e) });
      }
    },
    settle(id: number): Promise<string> {
      const p = pending.get(id);
      pending.delete(id);
      return p ?? PromiseCtor.resolve(stringify({ e: "unknown async call" }));
    },
    drop(id: number): void { pending.delete(id); },
  };
  // runBatch calls run through this closure variable, not through the global (which the host
  // removes before plugin code runs).
  const api = g.__weir as { run(p: string): string; runBatch(j: string): string };
  const runOne = api.run;
  api.runBatch = (joined: string): string => {
    const items = joined.split("\u0002");
    let out = "";
    for (let i = 0; i < items.length; i++) out += (i ? "\u0002" : "") + runOne(items[i]!);
    return out;
  };
}

/** The isolate-side source: sandboxMain applied to the global and the host call Reference. */
export function sandboxSource(): string {
  return `(${sandboxMain.toString()})(globalThis, globalThis.__weirHostCall); delete globalThis.__weirHostCall;`;
}
