/**
 * The code that runs inside every plugin isolate before the plugin's own bundle. It is written as
 * a self-contained function and sent to the isolate as source (`sandboxSource`), so it may use no
 * import and no outer variable.
 *
 * The isolate holds no reference to any host function: the host only ever calls in, always
 * asynchronously (the isolate runs on its own thread while Node's event loop goes on) and always
 * with a time limit, and only strings cross. What a plugin asks of the host (the store, fetch,
 * jwt, a rate-limit count) is a request record in the answer of the call it was made in; the host
 * does it and hands the result back in a later call, so the code a plugin runs after an `await` runs
 * inside a call of the host's, under that call's time limit, like everything else it runs.
 * Every result is serialised to JSON here, inside the isolate and under the call's time limit, so
 * a looping getter or a thrown Proxy burns the plugin's own time.
 *
 * The wire format: a call's argument (the inbox) and its answer (the outbox) are sequences of
 * records `K ID ":" LENGTH ":" PAYLOAD` (K one letter, ID and LENGTH decimal). Inbox records:
 *   c  run a hook: PAYLOAD is the packed call (NUL-separated fields, see FIELDS)
 *   r  the result of capability request ID: `{"ok":...}` or `{"error":...,"code"?:...}`
 *   x  the host gave up on call ID: forget it
 * Outbox records:
 *   d  call ID finished: "" (nothing changed) or the result JSON
 *      `{h?, ro?, p?, s?, r?, v?, c?, l?, m?, e?}` (headers, response header ops, path, status,
 *      respond, vars, consumer, logs, metrics, error)
 *   a  call ID awaits something: its `d` comes later
 *   q  capability request ID made by call C: PAYLOAD `C NUL name NUL argsJSON`
 *   z  call ID wrote logs or metrics after it finished: PAYLOAD `{l?, m?}`
 *   w  bytes of WebAssembly memory in use (ID 0)
 *   g  (ID 0) the guards refused an allocation V8 cannot survive or stop: PAYLOAD says which
 * After a call was stopped by its time limit, `salvage` answers what it had done, then
 *   k  call ID was running, PAYLOAD how long it had run (ms); or
 *   t  (ID 0) it had answered and hooks resuming after it ran past the limit
 * Records produced after `exchange` returned (an async hook finishing once the host delivered its
 * capability result) are kept for `watch`, a promise the host holds while async calls are open.
 */
declare const globalThis: Record<string, unknown>;

export function sandboxMain(g: Record<string, unknown>, guards: { wasmBytes(): number; refusals(): string }, wasm: boolean): void {
  // Captured before plugin code runs: a plugin that replaces a builtin breaks only its own calls.
  const stringify = JSON.stringify;
  const parse = JSON.parse;
  const apply = Reflect.apply;
  const PromiseCtor = Promise;
  const promiseThen = Promise.prototype.then;
  const promiseResolve = Promise.resolve.bind(Promise);
  const strIndexOf = String.prototype.indexOf;
  const strSlice = String.prototype.slice;
  const strSplit = String.prototype.split;
  const strLower = String.prototype.toLowerCase;
  const arrPush = Array.prototype.push;
  const now = Date.now;
  const objectKeys = Object.keys;
  const ErrorCtor = Error;
  const StringCtor = String;
  const NumberCtor = Number;
  const indexOf = (s: string, sub: string, from: number): number => apply(strIndexOf, s, [sub, from]) as number;
  const slice = (s: string, a: number, b?: number): string => apply(strSlice, s, b === undefined ? [a] : [a, b]) as string;
  const split = (s: string, sep: string): string[] => apply(strSplit, s, [sep]) as string[];
  const lower = (s: string): string => apply(strLower, s, []) as string;
  const push = (a: unknown[], ...v: unknown[]): void => { apply(arrPush, a, v); };
  const then = <T>(p: Promise<T>, ok: (v: T) => unknown, bad: (e: unknown) => unknown): void => { apply(promiseThen, p, [ok, bad]); };

  const MAX_LOGS = 20;
  let plugin: Record<string, unknown> | null = null;
  let config: unknown = {};
  let granted: { store?: boolean; fetch?: string[]; jwt?: boolean } = {};

  // ---- records ------------------------------------------------------------------------------

  /** The answer of the call running now; "" between calls. */
  let outbox = "";
  /** Records made after a call returned, for `watch`. */
  let late = "";
  let inCall = false;
  let watcher: ((records: string) => void) | null = null;
  /** The hook call running right now (for `salvage` after a time limit), and since when. */
  let runningId = -1;
  let runningSince = 0;

  function record(kind: string, id: number, payload: string): void {
    const r = kind + id + ":" + payload.length + ":" + payload;
    if (inCall) { outbox += r; return; }
    late += r;
    if (watcher !== null) {
      const w = watcher;
      watcher = null;
      const out = late;
      late = "";
      w(out);
    }
  }

  function describe(e: unknown): string {
    try {
      if (e && typeof e === "object" && "message" in e) return slice(StringCtor((e as { message: unknown }).message), 0, 500);
      return "non-Error value thrown: " + slice(StringCtor(e), 0, 200);
    } catch {
      return "an unprintable value was thrown";
    }
  }
  const errorResult = (e: unknown): string => {
    try { return stringify({ e: describe(e) }); } catch { return '{"e":"an unprintable value was thrown"}'; }
  };

  // ---- headers ------------------------------------------------------------------------------

  class Hdrs {
    list: string[] | null = null;
    dirty = false;
    /** In pending mode (response headers set in onRequest) the operations, in order. */
    ops: string[][] | null = null;
    constructor(private block: string, pending = false) { if (pending) this.ops = []; }
    private l(): string[] {
      if (this.list === null) this.list = this.block === "" ? [] : split(this.block, "\n");
      return this.list;
    }
    get(name: string): string | undefined {
      const n = lower(StringCtor(name));
      const l = this.l();
      let out: string | undefined;
      for (let i = 0; i < l.length; i += 2) if (lower(l[i]!) === n) out = out === undefined ? l[i + 1] : out + ", " + l[i + 1];
      return out;
    }
    has(name: string): boolean { return this.get(name) !== undefined; }
    delete(name: string): void {
      const n = lower(StringCtor(name));
      const l = this.l();
      const out: string[] = [];
      for (let i = 0; i < l.length; i += 2) if (lower(l[i]!) !== n) push(out, l[i]!, l[i + 1]!);
      if (out.length !== l.length) { this.list = out; this.dirty = true; }
      if (this.ops !== null) push(this.ops, ["d", StringCtor(name)]);
    }
    set(name: string, value: string): void { this.delete(name); this.append(name, value); }
    append(name: string, value: string): void {
      push(this.l(), StringCtor(name), StringCtor(value));
      this.dirty = true;
      if (this.ops !== null) push(this.ops, ["a", StringCtor(name), StringCtor(value)]);
    }
    entries(): [string, string][] {
      const l = this.l();
      const out: [string, string][] = [];
      for (let i = 0; i < l.length; i += 2) push(out, [l[i]!, l[i + 1]!]);
      return out;
    }
  }

  // ---- capabilities -------------------------------------------------------------------------

  const waiting: Record<number, { ok(v: unknown): void; fail(e: unknown): void; call: number }> = Object.create(null);
  /** Calls the host gave up on: their late results are not sent. */
  const dropped: Record<number, true> = Object.create(null);
  let nextCapability = 1;

  function ask(c: Ctx, name: string, args: unknown[]): Promise<unknown> {
    const id = nextCapability++;
    record("q", id, c.id + "\u0000" + name + "\u0000" + stringify(args));
    return new PromiseCtor((ok, fail) => { waiting[id] = { ok, fail, call: c.id }; });
  }

  function deliver(id: number, json: string): void {
    const w = waiting[id];
    if (w === undefined) return;
    delete waiting[id];
    const v = parse(json) as { ok?: unknown; error?: string; code?: string };
    if (v.error !== undefined) {
      // Errors are branded by a stable code (e.g. WEIR_ERR_STORE_UNAVAILABLE), not by class.
      const e = new ErrorCtor(v.error) as Error & { code?: string };
      if (v.code !== undefined) e.code = v.code;
      w.fail(e);
    } else {
      w.ok(v.ok);
    }
  }

  function denied(what: string): never {
    throw new ErrorCtor(`ctx.${what} needs a permission this plugin was not granted; declare it in definePlugin({ permissions }) and grant it in the route entry's permissions:`);
  }

  /** The capabilities of one call (a request's id travels with what it asks). */
  function capabilities(c: Ctx): Record<string, unknown> {
    return {
      store: {
        get: (k: string) => (granted.store ? ask(c, "store.get", [StringCtor(k)]) : denied("store")),
        set: (k: string, v: string, o?: { ttlMs?: number }) => (granted.store ? ask(c, "store.set", [StringCtor(k), StringCtor(v), o?.ttlMs ?? 0]) : denied("store")),
        incr: (k: string, by?: number, o?: { ttlMs?: number }) => (granted.store ? ask(c, "store.incr", [StringCtor(k), by ?? 1, o?.ttlMs ?? 0]) : denied("store")),
        delete: (k: string) => (granted.store ? ask(c, "store.delete", [StringCtor(k)]) : denied("store")),
      },
      fetch: (url: string, init?: unknown) => (granted.fetch && granted.fetch.length ? ask(c, "fetch", [StringCtor(url), init ?? {}]) : denied("fetch")),
      jwt: { verify: (token: string, options: unknown) => (granted.jwt ? ask(c, "jwt.verify", [StringCtor(token), options ?? {}]) : denied("jwt")) },
      // Counted by the host: the answer is a promise (one round trip to the host, as the store's).
      rateLimit: (key: string, o?: { limit?: unknown; windowMs?: unknown; onStoreError?: unknown }) => (granted.store
        ? ask(c, "rateLimit", [StringCtor(key), o?.limit, o?.windowMs, o?.onStoreError === "closed" ? "closed" : "open"])
        : denied("rateLimit (permission store)")),
      metrics: {
        increment: (name: string, by?: number, labels?: Record<string, string>) => c.metric(0, name, by ?? 1, labels),
        observe: (name: string, value: number, labels?: Record<string, string>) => c.metric(1, name, value, labels),
      },
    };
  }

  // ---- the context ------------------------------------------------------------------------

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
      if (this.c.phase !== "onRequest") throw new ErrorCtor("ctx.request.path can only be changed in onRequest");
      this.c.outPath = StringCtor(v);
    }
    get query(): string { return this.c.f[3]!; }
    get headers(): Hdrs { return (this.h ??= this.c.reqHeaders = new Hdrs(this.c.f[4]!)); }
  }
  class Res {
    private h: Hdrs | null = null;
    constructor(private readonly c: Ctx) {}
    get status(): number { return this.c.outStatus ?? NumberCtor(this.c.f[11] || 0); }
    set status(v: number) {
      if (this.c.phase !== "onResponse") throw new ErrorCtor("ctx.response.status can only be changed in onResponse");
      this.c.outStatus = NumberCtor(v);
    }
    /**
     * In onResponse: the response's headers. In onRequest there is no response yet: the headers
     * set here are applied to the response when it comes (the upstream's or a local one), which
     * saves a plugin an onResponse hook just to add headers.
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
    /** The hook returned (or its promise settled): later logs and metrics go out as a `z` record. */
    finished = false;
    private req: Req | null = null;
    private res: Res | null = null;
    private logApi: unknown = null;
    private caps: Record<string, unknown> | null = null;
    constructor(readonly f: string[], readonly phase: string, readonly id: number) {}
    get request(): Req { return (this.req ??= new Req(this)); }
    get response(): Res { return (this.res ??= new Res(this)); }
    respond(s: number, body?: unknown, headers?: Record<string, string>): void {
      if (this.phase !== "onRequest" && this.phase !== "onResponse") throw new ErrorCtor(`ctx.respond cannot be used in ${this.phase}; it is available in onRequest and onResponse`);
      const h: string[] = [];
      if (headers) { const names = objectKeys(headers); for (let i = 0; i < names.length; i++) push(h, StringCtor(names[i]), StringCtor(headers[names[i]!])); }
      let b: string | undefined;
      // A BigInt or a cycle makes stringify throw, a function or a symbol gives undefined: either
      // way the plugin hears which argument was wrong.
      try { b = body === undefined ? "" : typeof body === "string" ? body : stringify(body); } catch { b = undefined; }
      if (typeof b !== "string") throw new ErrorCtor(`ctx.respond: the body (${typeof body}) cannot be sent; give a string or a JSON-serialisable value`);
      this.outRespond = { s: NumberCtor(s), b, h, j: body !== undefined && typeof body !== "string" };
    }
    get config(): unknown { return config; }
    get vars(): Record<string, unknown> { return (this.varsValue ??= this.f[9] ? parse(this.f[9]) : {}); }
    get route(): { name: string; params: Record<string, string> } {
      const f = this.f;
      return { name: f[6]!, get params() { return f[7] ? parse(f[7]) : {}; } };
    }
    get client(): { ip: string } { return { ip: this.f[5]! }; }
    get consumer(): string | null { return this.consumerSet ? this.consumerValue : this.f[8] === "" ? null : this.f[8]!; }
    set consumer(v: string | null) { this.consumerValue = v === null || v === undefined ? null : StringCtor(v); this.consumerSet = true; }
    get requestId(): string { return this.f[10]!; }
    get timing(): { total: number; upstream: number } { return this.f[13] ? parse(this.f[13]) : { total: 0, upstream: 0 }; }
    get log(): unknown {
      if (this.logApi === null) {
        const line = (level: string) => (message: unknown, fields?: unknown) => {
          const logs = (this.logs ??= []);
          if (logs.length < MAX_LOGS) push(logs, [level, StringCtor(message), fields === undefined ? "" : stringify(fields)]);
          this.flushExtras();
        };
        this.logApi = { debug: line("debug"), info: line("info"), warn: line("warn"), error: line("error") };
      }
      return this.logApi;
    }
    metric(op: number, name: unknown, value: unknown, labels: unknown): void {
      if (typeof name !== "string" || typeof value !== "number") throw new ErrorCtor("ctx.metrics: a metric needs a name (string) and a number");
      push((this.metricOps ??= []), [op, name, value, labels ?? null]);
      this.flushExtras();
    }
    /** Logs and metrics written after the hook finished (from a promise it left running). */
    private flushExtras(): void {
      if (!this.finished) return;
      const out: Record<string, unknown> = {};
      if (this.logs !== null) out.l = this.logs;
      if (this.metricOps !== null) out.m = this.metricOps;
      this.logs = this.metricOps = null;
      record("z", this.id, stringify(out));
    }
    private c(): Record<string, unknown> { return (this.caps ??= capabilities(this)); }
    get store(): unknown { return this.c().store; }
    get fetch(): unknown { return this.c().fetch; }
    get jwt(): unknown { return this.c().jwt; }
    get rateLimit(): unknown { return this.c().rateLimit; }
    get metrics(): unknown { return this.c().metrics; }
  }

  /** The call's outcome as the wire string: "" when the hook changed nothing. */
  function finish(c: Ctx): string {
    c.finished = true;
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
    c.logs = c.metricOps = null;
    return r === null ? "" : stringify(r);
  }

  function settled(c: Ctx, result: string): void {
    if (dropped[c.id]) { delete dropped[c.id]; return; }
    record("d", c.id, result);
  }

  function runCall(id: number, packed: string): void {
    const f = split(packed, "\u0000");
    const phase = f[0]!;
    const ctx = new Ctx(f, phase, id);
    runningId = id;
    runningSince = now();
    let result: unknown;
    try {
      result = (plugin![phase] as (c: unknown) => unknown)(ctx);
      if (result && typeof (result as { then?: unknown }).then === "function") {
        record("a", id, "");
        then(promiseResolve(result),
          () => { let s: string; try { s = finish(ctx); } catch (e) { s = errorResult(e); } settled(ctx, s); },
          (e: unknown) => { ctx.finished = true; settled(ctx, errorResult(e)); });
      } else {
        record("d", id, finish(ctx));
      }
    } catch (e) {
      ctx.finished = true;
      record("d", id, errorResult(e));
    }
    runningId = -1;
  }

  /** Parses the records of `text`, calling `each(kind, id, payload)`. */
  function records(text: string, each: (kind: string, id: number, payload: string) => void): void {
    let p = 0;
    while (p < text.length) {
      const kind = text[p]!;
      const colon = indexOf(text, ":", p + 1);
      const colon2 = indexOf(text, ":", colon + 1);
      const id = NumberCtor(slice(text, p + 1, colon));
      const length = NumberCtor(slice(text, colon + 1, colon2));
      const payload = slice(text, colon2 + 1, colon2 + 1 + length);
      p = colon2 + 1 + length;
      each(kind, id, payload);
    }
  }

  /** Microtask turns `exchangeSettled` waits before it answers. */
  const SETTLE_TURNS = 8;

  /** The last answer given, until the next call begins (see salvage). */
  let answered = "";

  function begin(inbox: string): void {
    answered = "";
    inCall = true;
    outbox = late;
    late = "";
    try {
      records(inbox, (kind, id, payload) => {
        if (kind === "c") runCall(id, payload);
        else if (kind === "r") deliver(id, payload);
        else if (kind === "x") dropped[id] = true;
      });
    } catch (e) {
      inCall = false;
      throw e;
    }
  }

  function end(): string {
    if (wasm) record("w", 0, StringCtor(guards.wasmBytes()));
    const refused = guards.refusals();
    if (refused !== "") record("g", 0, refused);
    inCall = false;
    const out = outbox;
    outbox = "";
    answered = out;
    return out;
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
      const names = ["onRequest", "onResponse", "onLog"];
      for (let i = 0; i < names.length; i++) {
        const h = names[i]!;
        if (def[h] !== undefined && typeof def[h] !== "function") return stringify({ error: `${h} must be a function` });
        if (typeof def[h] === "function") push(hooks, h);
      }
      return stringify({ name: def.name, version: def.version, hooks, configSchema: def.configSchema ?? null, permissions: def.permissions ?? {} });
    },
    configure(configJson: string, grantedJson: string): void {
      config = parse(configJson);
      granted = parse(grantedJson);
    },
    /** One crossing: runs the inbox's records, returns the outbox's. */
    exchange(inbox: string): string {
      begin(inbox);
      return end();
    },
    /**
     * The same, for an inbox that hands results to awaiting hooks (or calls hooks that are async
     * functions): the answer is given a few microtask turns later, so that the hooks that resume
     * finish inside this crossing and their results come with it, instead of one crossing later.
     */
    exchangeSettled(inbox: string): Promise<string> {
      begin(inbox);
      return new PromiseCtor((resolve) => {
        const last = (): void => { resolve(end()); };
        let left = SETTLE_TURNS;
        const step = (): void => { if (--left > 0) then(promiseResolve(undefined), step, step); else last(); };
        step();
      });
    },
    /**
     * After a call was stopped by its time limit: what it had finished (its outbox so far), and
     * `k` for the hook that was running, with how long it had run (ms).
     */
    salvage(): string {
      let out: string;
      if (answered !== "" || (runningId < 0 && !inCall)) {
        // Stopped after it had answered, while hooks resumed in the microtask turns that follow a
        // call: the answer stands, and `t` says the resumed hooks ran past the limit.
        out = answered + late + "t0:0:";
        late = "";
      } else {
        out = outbox;
        if (runningId >= 0) {
          const ran = StringCtor(now() - runningSince);
          out += "k" + runningId + ":" + ran.length + ":" + ran;
        }
      }
      answered = "";
      outbox = "";
      inCall = false;
      runningId = -1;
      return out;
    },
    /** Resolves with the records made outside a call, as soon as there are any. */
    watch(): Promise<string> {
      if (late !== "") { const out = late; late = ""; return promiseResolve(out); }
      return new PromiseCtor((resolve) => { watcher = resolve; });
    },
  };
}

/** The isolate-side source: the guards, then sandboxMain, applied to the global. */
export function sandboxSource(guardsSource: string, settings: { memoryBytes: number; wasm: boolean }): string {
  return `(${sandboxMain.toString()})(globalThis, (${guardsSource})(globalThis, ${JSON.stringify(settings)}), ${settings.wasm});`;
}
