/**
 * A route's plugin chain (global entries first, then the route's, in config order), built once per
 * generation. It runs each phase's hooks for one request, taking the synchronous path while the
 * hooks do not await and continuing asynchronously from the first one that does.
 *
 * Everything a plugin hands back is checked here before it can reach the wire: header names must
 * be tokens and values free of CR, LF and NUL; statuses must be 100-599. A failing plugin applies
 * its entry's onError: `closed` answers 500, `open` skips it.
 */
import { HOP_BY_HOP } from "../lifecycle/hop-by-hop.js";
import type { ProxyRequest } from "../lifecycle/prepare-request.js";
import { PluginFailure, type PluginInstance } from "./plugin-instance.js";
import { releaseInstance, type PluginSlot } from "./plugin-slot.js";

/** A response Weir makes on a plugin's behalf (ctx.respond) or for a failed plugin. */
export interface LocalResponse {
  status: number;
  /** Flat [name, value, ...]. */
  headers: string[];
  body: string;
}

/** The response as response hooks see and change it. */
export interface ResponseState {
  status: number;
  headers: string[];
  /** Set when the response is local (ctx.respond or a failure); the upstream's body is then dropped. */
  local: LocalResponse | null;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const BAD_VALUE = /[\r\n\0]/;
const RESERVED_REQUEST = new Set(["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id", "content-length"]);
const CONTINUE = 0 as const;

/**
 * The chain positions that failed during a request. A plugin that failed is not called again for
 * that request: its isolate may be gone (being rebuilt after a timeout or OOM), and running its
 * onResponse on the 500 it caused would fail again and misname the phase in the answer.
 * Only requests with a failure are in the map (`pr.failedPlugins` is the cheap check first).
 */
const failedAt = new WeakMap<ProxyRequest, Set<number>>();
const hasFailed = (pr: ProxyRequest, i: number): boolean => pr.failedPlugins !== null && failedAt.get(pr)?.has(i) === true;

function validHeaders(list: unknown): list is string[] {
  if (!Array.isArray(list) || list.length % 2 !== 0) return false;
  for (let i = 0; i < list.length; i += 2) {
    const n = list[i], v = list[i + 1];
    if (typeof n !== "string" || typeof v !== "string" || !TOKEN.test(n) || BAD_VALUE.test(v)) return false;
  }
  return true;
}

/** JSON.parse that drops keys which could pollute prototypes when the value is merged later. */
function safeParse(text: string): Record<string, unknown> {
  // A reviver costs on every result; only a result that names one of the keys needs it.
  if (!text.includes('"__proto__"') && !text.includes('"constructor"') && !text.includes('"prototype"')) return JSON.parse(text) as Record<string, unknown>;
  return JSON.parse(text, (k, v) => (k === "__proto__" || k === "constructor" || k === "prototype" ? undefined : v)) as Record<string, unknown>;
}

export function jsonError(status: number, code: string, message: string, requestId: string): LocalResponse {
  return { status, headers: ["content-type", "application/json; charset=utf-8"], body: JSON.stringify({ error: message, code, requestId }) };
}

export class PluginChain {
  readonly empty: boolean;

  // Which hooks a plugin has can change with a hot reload: each pinned instance is asked
  // (hasRequest, hasResponse, hasLog), not the chain.
  constructor(readonly slots: readonly PluginSlot[]) {
    this.empty = slots.length === 0;
  }

  /** Holds the current instance of every slot for this request's whole life. */
  pin(pr: ProxyRequest): void {
    const pinned: PluginInstance[] = new Array(this.slots.length);
    for (let i = 0; i < this.slots.length; i++) {
      const inst = this.slots[i]!.current;
      inst.inflight++;
      pinned[i] = inst;
    }
    pr.pinned = pinned;
  }

  release(pr: ProxyRequest): void {
    const pinned = pr.pinned;
    if (!pinned) return;
    pr.pinned = null;
    for (const inst of pinned) releaseInstance(inst);
  }

  // ---- onRequest --------------------------------------------------------------------------

  /** Runs the request hooks: null to go on to the upstream, or the local response to send. */
  runRequest(pr: ProxyRequest): LocalResponse | null | Promise<LocalResponse | null> {
    return this.requestFrom(pr, 0);
  }

  private requestFrom(pr: ProxyRequest, start: number): LocalResponse | null | Promise<LocalResponse | null> {
    const pinned = pr.pinned!;
    for (let i = start; i < pinned.length; i++) {
      const inst = pinned[i]!;
      if (!inst.hasRequest) continue;
      const r = inst.run("onRequest", pack("onRequest", pr, 0, ""), pr);
      if (r instanceof Promise) {
        return r.then((v) => {
          const o = this.applyRequest(pr, i, v);
          return o === CONTINUE ? this.requestFrom(pr, i + 1) : o;
        });
      }
      const o = this.applyRequest(pr, i, r);
      if (o !== CONTINUE) return o;
    }
    return null;
  }

  private applyRequest(pr: ProxyRequest, i: number, r: string | PluginFailure): LocalResponse | typeof CONTINUE {
    if (r instanceof PluginFailure) return this.failed(pr, i, r);
    if (r === "") return CONTINUE;
    const inst = pr.pinned![i]!;
    let out: Record<string, unknown>;
    try { out = safeParse(r); } catch { return this.failed(pr, i, new PluginFailure(inst.name, "onRequest", "the plugin returned a malformed result")); }
    if (out.v !== undefined) pr.varsJson = String(out.v);
    if (out.c !== undefined) pr.consumer = out.c === null ? null : String(out.c);
    if (out.l !== undefined) pr.pluginLogs(inst.name, out.l);
    if (out.m !== undefined) inst.applyMetrics(out.m);
    if (out.h !== undefined) {
      if (!validHeaders(out.h)) return this.failed(pr, i, new PluginFailure(inst.name, "onRequest", "the plugin set a header with an invalid name or a value containing CR, LF or NUL"));
      applyRequestHeaders(pr, out.h);
    }
    if (out.ro !== undefined) {
      if (!validOps(out.ro)) return this.failed(pr, i, new PluginFailure(inst.name, "onRequest", "the plugin set a response header with an invalid name or a value containing CR, LF or NUL"));
      pr.responseOps = pr.responseOps === null ? out.ro : pr.responseOps.concat(out.ro);
    }
    if (out.p !== undefined) {
      const p = String(out.p);
      if (p.charCodeAt(0) !== 47 || BAD_VALUE.test(p) || p.includes(" ") || p.includes("?") || p.includes("#"))
        return this.failed(pr, i, new PluginFailure(inst.name, "onRequest", `the plugin set an invalid path ${JSON.stringify(p.slice(0, 100))} (it must start with "/" and contain no spaces, "?" or "#")`));
      pr.pathOverride = p;
    }
    if (out.r !== undefined) return this.localFrom(pr, i, out.r, "onRequest") ?? CONTINUE;
    return CONTINUE;
  }

  // ---- onResponse -------------------------------------------------------------------------

  /** Runs the response hooks on `state` (changed in place). */
  runResponse(pr: ProxyRequest, state: ResponseState): ResponseState | Promise<ResponseState> {
    return this.responseFrom(pr, state, 0);
  }

  private responseFrom(pr: ProxyRequest, state: ResponseState, start: number): ResponseState | Promise<ResponseState> {
    const pinned = pr.pinned!;
    if (start === 0 && pr.responseOps !== null) state.headers = applyOps(state.headers, pr.responseOps);
    for (let i = start; i < pinned.length; i++) {
      const inst = pinned[i]!;
      if (!inst.hasResponse || hasFailed(pr, i)) continue;
      const r = inst.run("onResponse", pack("onResponse", pr, state.status, state.headers.join("\n")), pr);
      if (r instanceof Promise) return r.then((v) => { this.applyResponse(pr, i, v, state); return this.responseFrom(pr, state, i + 1); });
      this.applyResponse(pr, i, r, state);
    }
    return state;
  }

  private applyResponse(pr: ProxyRequest, i: number, r: string | PluginFailure, state: ResponseState): void {
    const inst = pr.pinned![i]!;
    const fail = (f: PluginFailure) => {
      const local = this.failed(pr, i, f);
      if (local !== CONTINUE) setLocal(state, local);
    };
    if (r instanceof PluginFailure) return fail(r);
    if (r === "") return;
    let out: Record<string, unknown>;
    try { out = safeParse(r); } catch { return fail(new PluginFailure(inst.name, "onResponse", "the plugin returned a malformed result")); }
    if (out.v !== undefined) pr.varsJson = String(out.v);
    if (out.c !== undefined) pr.consumer = out.c === null ? null : String(out.c);
    if (out.l !== undefined) pr.pluginLogs(inst.name, out.l);
    if (out.m !== undefined) inst.applyMetrics(out.m);
    if (out.h !== undefined) {
      if (!validHeaders(out.h)) return fail(new PluginFailure(inst.name, "onResponse", "the plugin set a header with an invalid name or a value containing CR, LF or NUL"));
      state.headers = dropHopByHop(out.h, state.local === null);
    }
    if (out.s !== undefined) {
      const s = Number(out.s);
      if (!Number.isInteger(s) || s < 100 || s > 599) return fail(new PluginFailure(inst.name, "onResponse", `the plugin set an invalid status ${String(out.s)}`));
      state.status = s;
    }
    if (out.r !== undefined) {
      const local = this.localFrom(pr, i, out.r, "onResponse");
      if (local) setLocal(state, local);
    }
  }

  // ---- onLog ------------------------------------------------------------------------------

  /** Queues the log hooks; they run after the response, off the request path. */
  runLog(pr: ProxyRequest, status: number, responseHeaders: string[]): void {
    const pinned = pr.pinned;
    if (!pinned) return;
    // The call is the same for every plugin: built once, and only when one has an onLog hook.
    let packed: string | null = null;
    for (let i = 0; i < pinned.length; i++) {
      const inst = pinned[i]!;
      if (!inst.hasLog || hasFailed(pr, i)) continue;
      if (packed === null) {
        const now = performance.now();
        const upstream = pr.upstreamStartedAt > 0 ? now - pr.upstreamStartedAt : 0;
        packed = pack("onLog", pr, status, responseHeaders.join("\n"), `{"total":${(now - pr.startedAt).toFixed(3)},"upstream":${upstream.toFixed(3)}}`) + "\u0000" + pr.responseBodyBytes;
      }
      inst.enqueueLog(packed);
    }
  }

  // ---- shared -----------------------------------------------------------------------------

  private localFrom(pr: ProxyRequest, i: number, raw: unknown, hook: string): LocalResponse | null {
    const inst = pr.pinned![i]!;
    const r = raw as { s?: unknown; b?: unknown; h?: unknown; j?: unknown };
    const status = Number(r.s);
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      const f = this.failed(pr, i, new PluginFailure(inst.name, hook, `ctx.respond was given an invalid status ${String(r.s)}`));
      return f === CONTINUE ? null : f;
    }
    const headers = r.h ?? [];
    if (!validHeaders(headers)) {
      const f = this.failed(pr, i, new PluginFailure(inst.name, hook, "ctx.respond was given a header with an invalid name or a value containing CR, LF or NUL"));
      return f === CONTINUE ? null : f;
    }
    const h = dropHopByHop(headers);
    if (!h.some((n, k) => k % 2 === 0 && n.toLowerCase() === "content-type") && r.b !== "")
      h.push("content-type", r.j ? "application/json; charset=utf-8" : "text/plain; charset=utf-8");
    return { status, headers: h, body: typeof r.b === "string" ? r.b : "" };
  }

  /** Applies the entry's onError to a failure. */
  private failed(pr: ProxyRequest, i: number, f: PluginFailure): LocalResponse | typeof CONTINUE {
    pr.pluginFailed(this.slots[i]!, f);
    let set = failedAt.get(pr);
    if (!set) failedAt.set(pr, (set = new Set()));
    set.add(i);
    if (this.slots[i]!.entry.onError === "open") return CONTINUE;
    return jsonError(500, f.code, `the plugin "${f.plugin}" failed in ${f.hook}`, pr.requestId);
  }
}

/** Response header operations from onRequest: well-formed, and nothing that could reach the wire broken. */
function validOps(ops: unknown): ops is string[][] {
  if (!Array.isArray(ops)) return false;
  for (const op of ops) {
    if (!Array.isArray(op) || typeof op[1] !== "string" || !TOKEN.test(op[1])) return false;
    if (op[0] === "a") { if (typeof op[2] !== "string" || BAD_VALUE.test(op[2])) return false; }
    else if (op[0] !== "d") return false;
  }
  return true;
}

/** Applies queued operations to a flat header list (hop-by-hop names are never added). */
function applyOps(headers: string[], ops: string[][]): string[] {
  let out = headers;
  for (const op of ops) {
    const lower = op[1]!.toLowerCase();
    if (op[0] === "d") {
      const next: string[] = [];
      for (let i = 0; i < out.length; i += 2) if (out[i]!.toLowerCase() !== lower) next.push(out[i]!, out[i + 1]!);
      out = next;
    } else if (!HOP_BY_HOP.has(lower) && lower !== "content-length") {
      if (out === headers) out = headers.slice();
      out.push(op[1]!, op[2]!);
    }
  }
  return out;
}

function setLocal(state: ResponseState, local: LocalResponse): void {
  state.local = local;
  state.status = local.status;
  state.headers = local.headers;
}

/** Drops hop-by-hop headers; Content-Length too unless the body is the upstream's, unchanged. */
function dropHopByHop(list: string[], keepLength = false): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) {
    const lower = list[i]!.toLowerCase();
    if (!HOP_BY_HOP.has(lower) && (keepLength || lower !== "content-length")) out.push(list[i]!, list[i + 1]!);
  }
  return out;
}

/**
 * A request header list from a plugin; Weir's own headers stay Weir's. The list a plugin gets back
 * holds the Host it was shown (the client's): only a Host the plugin changed becomes the upstream
 * Host. Otherwise the route's rule holds (the target's host:port, or the client's with
 * `preserveHost`), whatever else the plugin set.
 */
function applyRequestHeaders(pr: ProxyRequest, list: string[]): void {
  const forward: string[] = [];
  const shown = pr.hostOverride ?? pr.inbound.host;
  for (let i = 0; i < list.length; i += 2) {
    const lower = list[i]!.toLowerCase();
    if (lower === "host") {
      if (list[i + 1] !== shown) pr.hostOverride = list[i + 1]!;
      continue;
    }
    if (HOP_BY_HOP.has(lower) || RESERVED_REQUEST.has(lower)) {
      if (lower === "content-length") forward.push(list[i]!, list[i + 1]!); // kept as the client sent it
      continue;
    }
    forward.push(list[i]!, list[i + 1]!);
  }
  pr.setForwardHeaders(forward);
}

/**
 * Packs one hook call into a single NUL-separated string (see sandbox-main.ts): one string crosses
 * into the isolate instead of a dozen values or an object to copy.
 */
function pack(phase: string, pr: ProxyRequest, status: number, responseBlock: string, timingJson = ""): string {
  return phase + "\u0000" + pr.method + "\u0000" + (pr.pathOverride ?? pr.path) + "\u0000" + pr.query + "\u0000" +
    pr.headerBlock() + "\u0000" + pr.clientIp + "\u0000" + pr.route.name + "\u0000" + pr.paramsJson() + "\u0000" +
    (pr.consumer ?? "") + "\u0000" + pr.varsJson + "\u0000" + pr.requestId + "\u0000" + status + "\u0000" +
    responseBlock + "\u0000" + timingJson;
}
