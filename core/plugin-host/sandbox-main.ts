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
    constructor(private block: string) {}
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
    }
    set(name: string, value: string): void { this.delete(name); this.append(name, value); }
    append(name: string, value: string): void { this.l().push(String(name), String(value)); this.dirty = true; }
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
  /** ctx.metrics: synchronous host calls (plugin-metrics.ts). */
  function metric(op: string, name: unknown, value: unknown, labels: unknown): void {
    const v = parse(hostCall.applySync(undefined, [op, stringify([String(name), value, labels ?? null])]) as string) as { error?: string };
    if (v.error !== undefined) throw new Error(v.error);
  }
  function denied(what: string): never {
    throw new Error(`ctx.${what} needs a permission this plugin was not granted; declare it in definePlugin({ permissions }) and grant it in the route entry's permissions:`);
  }

  // Fields of a packed call, in order.
  // 0 phase, 1 method, 2 path, 3 query, 4 request headers, 5 client ip, 6 route name, 7 params JSON,
  // 8 consumer ("\u0000" none -> we use "" for none), 9 vars JSON, 10 request id, 11 status,
  // 12 response headers, 13 timing JSON
  function makeCtx(f: string[], phase: string) {
    const reqHeaders = new Hdrs(f[4]!);
    const resHeaders = new Hdrs(f[12] ?? "");
    const out: { path?: string; status?: number; respond?: unknown; consumer?: string | null; logs: string[][] } = { logs: [] };
    const log = (level: string) => (message: unknown, fields?: unknown) => {
      if (out.logs.length < MAX_LOGS) out.logs.push([level, String(message), fields === undefined ? "" : stringify(fields)]);
    };
    let path = f[2]!;
    let status = Number(f[11] || 0);
    let consumer: string | null = f[8] === "" ? null : f[8]!;
    const vars = f[9] ? parse(f[9]) : {};
    const ctx = {
      request: {
        method: f[1],
        get path() { return path; },
        set path(v: string) {
          if (phase !== "onRequest") throw new Error("ctx.request.path can only be changed in onRequest");
          path = String(v); out.path = path;
        },
        query: f[3],
        headers: reqHeaders,
      },
      response: {
        get status() { return status; },
        set status(v: number) {
          if (phase !== "onResponse") throw new Error("ctx.response.status can only be changed in onResponse");
          status = Number(v); out.status = status;
        },
        headers: resHeaders,
      },
      respond(s: number, body?: unknown, headers?: Record<string, string>) {
        if (phase !== "onRequest" && phase !== "onResponse") throw new Error(`ctx.respond cannot be used in ${phase}; it is available in onRequest and onResponse`);
        const h: string[] = [];
        if (headers) for (const k of Object.keys(headers)) h.push(String(k), String(headers[k]));
        const b = body === undefined ? "" : typeof body === "string" ? body : stringify(body);
        out.respond = { s: Number(s), b, h, j: body !== undefined && typeof body !== "string" };
      },
      config,
      vars,
      route: { name: f[6], params: f[7] ? parse(f[7]) : {} },
      client: { ip: f[5] },
      get consumer() { return consumer; },
      set consumer(v: string | null) { consumer = v === null ? null : String(v); out.consumer = consumer; },
      requestId: f[10],
      timing: f[13] ? parse(f[13]) : { total: 0, upstream: 0 },
      log: { debug: log("debug"), info: log("info"), warn: log("warn"), error: log("error") },
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
    const finish = (): string => {
      const r: Record<string, unknown> = {};
      let any = false;
      if (reqHeaders.dirty && phase === "onRequest") { r.h = reqHeaders.list; any = true; }
      if (resHeaders.dirty && phase === "onResponse") { r.h = resHeaders.list; any = true; }
      if (out.path !== undefined) { r.p = out.path; any = true; }
      if (out.status !== undefined) { r.s = out.status; any = true; }
      if (out.respond !== undefined) { r.r = out.respond; any = true; }
      if ("consumer" in out) { r.c = out.consumer; any = true; }
      const v = stringify(vars);
      if (v !== (f[9] || "{}")) { r.v = v; any = true; }
      if (out.logs.length) { r.l = out.logs; any = true; }
      return any ? stringify(r) : "";
    };
    return { ctx, finish };
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
    },
    run(packed: string): string {
      const f = packed.split("\u0000");
      const phase = f[0]!;
      const { ctx, finish } = makeCtx(f, phase);
      try {
        const result = (plugin![phase] as (c: unknown) => unknown)(ctx);
        if (result && typeof (result as { then?: unknown }).then === "function") {
          const id = nextId++;
          pending.set(id, PromiseCtor.resolve(result).then(finish, (e: unknown) => stringify({ e: describe(e) })));
          return "\u0001" + id;
        }
        return finish();
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
}

/** The isolate-side source: sandboxMain applied to the global and the host call Reference. */
export function sandboxSource(): string {
  return `(${sandboxMain.toString()})(globalThis, globalThis.__weirHostCall); delete globalThis.__weirHostCall;`;
}
