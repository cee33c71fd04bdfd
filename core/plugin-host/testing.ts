/**
 * `weir/sdk/testing`: run a plugin's hooks against a synthetic request in the real sandbox (the
 * same compiler, isolate, limits and capabilities Weir uses), from any test runner.
 *
 * @example
 * import { loadPlugin } from "weir/sdk/testing";
 * const plugin = await loadPlugin("./my-policy.ts", { config: { greeting: "hi" } });
 * const r = await plugin.request({ path: "/blocked" });
 * assert.equal(r.responded?.status, 403);
 * await plugin.close();
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { MemoryStore } from "../store/memory-store.js";
import { createHostCall, type Granted } from "./capabilities.js";
import { compilePlugin } from "./compile-plugin.js";
import { PluginFailure, PluginInstance, type PluginManifest } from "./plugin-instance.js";
import { PLUGIN_DEFAULTS } from "./plugin-host.js";
import { resultFault } from "./result-rules.js";

/** limits.maxHeaderBytes' default, which bounds the headers a hook may set (with PLUGIN_HEADER_BYTES). */
const DEFAULT_MAX_HEADER_BYTES = 16384;

export interface TestRequest {
  method?: string;
  path?: string;
  /** With its "?", e.g. "?page=2". */
  query?: string;
  headers?: Record<string, string>;
  clientIp?: string;
  route?: string;
  params?: Record<string, string>;
  consumer?: string | null;
  vars?: Record<string, unknown>;
  requestId?: string;
}

export interface TestResponseInput extends TestRequest {
  status?: number;
  responseHeaders?: Record<string, string>;
}

export interface Responded { status: number; headers: Record<string, string>; body: string; json: unknown }

export interface HookResult {
  /** What ctx.respond answered, or null. */
  responded: Responded | null;
  /** The hook failed (threw, timed out, ran out of memory...): the message, or null. */
  error: string | null;
  /** The request as it would go upstream (onRequest). */
  request: { path: string; headers: Record<string, string> };
  /** The response after the hook (onResponse). */
  response: { status: number; headers: Record<string, string> };
  consumer: string | null;
  vars: Record<string, unknown>;
  logs: { level: string; message: string; fields: unknown }[];
}

export interface LoadOptions {
  config?: Record<string, unknown>;
  /** What the route entry grants; default: everything the plugin declares. */
  permissions?: Granted;
  limits?: { memoryMb?: number; timeoutMs?: number; asyncTimeoutMs?: number; loadTimeoutMs?: number; maxMetricSeries?: number };
}

export interface TestPlugin {
  readonly manifest: PluginManifest;
  /**
   * Runs onRequest. `result.response` shows what response headers set in onRequest would do to a
   * response with `responseHeaders` (they are applied when the response comes).
   */
  request(input?: TestResponseInput): Promise<HookResult>;
  response(input?: TestResponseInput): Promise<HookResult>;
  log(input?: TestResponseInput & { timing?: { total: number; upstream: number } }): Promise<HookResult>;
  /** Bytes of V8 heap the isolate uses. */
  heapUsed(): number;
  close(): Promise<void>;
}

const ajv = new Ajv({ allErrors: true, strict: false, useDefaults: true });

/** Compiles and loads a plugin file (a path or file: URL) into a real isolate. */
export async function loadPlugin(file: string | URL, options: LoadOptions = {}): Promise<TestPlugin> {
  const path = file instanceof URL ? fileURLToPath(file) : resolve(file);
  const compiled = await compilePlugin(path);
  const store = new MemoryStore();
  let call = createHostCall("pending", {}, () => store);
  const limits = { ...PLUGIN_DEFAULTS, ...options.limits };
  const instance = await PluginInstance.create(compiled, limits, (n, a) => call(n, a), (manifest) => {
    const granted: Granted = options.permissions ?? manifest.permissions;
    call = createHostCall(manifest.name, granted, () => store);
    const config = structuredClone(options.config ?? {});
    if (manifest.configSchema) {
      const validate = ajv.compile(manifest.configSchema);
      if (!validate(config)) throw new Error(`invalid config: ${ajv.errorsText(validate.errors, { dataVar: "config" })}`);
    }
    return { configJson: JSON.stringify(config), grantedJson: JSON.stringify(granted) };
  }, { failed: () => undefined, fatal: () => undefined }, options.permissions?.wasm === true);

  const run = async (phase: string, input: TestResponseInput & { timing?: unknown }): Promise<HookResult> => {
    const reqHeaders = Object.entries(input.headers ?? {}).flat();
    const resHeaders = Object.entries(input.responseHeaders ?? {}).flat();
    const status = input.status ?? (phase === "onRequest" ? 0 : 200);
    const packed = [
      phase, input.method ?? "GET", input.path ?? "/", input.query ?? "", reqHeaders.join("\n"), input.clientIp ?? "127.0.0.1",
      input.route ?? "test", input.params ? JSON.stringify(input.params) : "", input.consumer ?? "",
      input.vars ? JSON.stringify(input.vars) : "", input.requestId ?? "test-request", String(status), resHeaders.join("\n"),
      input.timing ? JSON.stringify(input.timing) : "",
    ].join("\u0000");
    const result: HookResult = {
      responded: null, error: null,
      request: { path: input.path ?? "/", headers: { ...input.headers } },
      response: { status, headers: { ...input.responseHeaders } },
      consumer: input.consumer ?? null, vars: { ...input.vars }, logs: [],
    };
    if (!(instance.manifest.hooks as string[]).includes(phase)) return result;
    const r = await instance.run(phase, packed);
    await instance.readHeap(); // so that heapUsed() answers for this call
    if (r instanceof PluginFailure) { result.error = r.message; return result; }
    if (r === "") return result;
    const out = JSON.parse(r) as { h?: string[]; p?: string; s?: number; r?: { s: number; b: string; h: string[]; j: boolean }; v?: string; c?: string | null; l?: string[][]; ro?: string[][]; m?: unknown };
    if (out.m !== undefined) instance.applyMetrics(out.m, phase);
    if (out.l) result.logs = out.l.map(([level, message, fields]) => ({ level: level!, message: message!, fields: fields ? JSON.parse(fields) : undefined }));
    // What Weir would refuse (a bad header, status or path) is the error Weir would give.
    const fault = resultFault(out, phase, DEFAULT_MAX_HEADER_BYTES);
    if (fault !== null) { result.error = instance.refuse(phase, fault.detail, fault.code, input.requestId ?? "test-request").message; return result; }
    if (out.ro) {
      // Response headers set in onRequest: what the response will get.
      for (const [op, name, value] of out.ro) {
        if (op === "d") delete result.response.headers[name!.toLowerCase()];
        else result.response.headers[name!.toLowerCase()] = value!;
      }
    }
    const toRecord = (l: string[]) => { const o: Record<string, string> = {}; for (let i = 0; i < l.length; i += 2) o[l[i]!.toLowerCase()] = o[l[i]!.toLowerCase()] === undefined ? l[i + 1]! : `${o[l[i]!.toLowerCase()]}, ${l[i + 1]}`; return o; };
    if (out.h) { if (phase === "onRequest") result.request.headers = toRecord(out.h); else result.response.headers = toRecord(out.h); }
    if (out.p !== undefined) result.request.path = out.p;
    if (out.s !== undefined) result.response.status = out.s;
    if (out.v !== undefined) result.vars = JSON.parse(out.v) as Record<string, unknown>;
    if (out.c !== undefined) result.consumer = out.c;
    if (out.r) {
      let json: unknown;
      try { json = out.r.j ? JSON.parse(out.r.b) : undefined; } catch { json = undefined; }
      result.responded = { status: out.r.s, headers: toRecord(out.r.h), body: out.r.b, json };
    }
    return result;
  };

  return {
    manifest: instance.manifest,
    request: (input = {}) => run("onRequest", input),
    response: (input = {}) => run("onResponse", input),
    log: (input = {}) => run("onLog", input),
    heapUsed: () => instance.heapUsed(),
    close: async () => { instance.dispose(); await store.close(); },
  };
}
