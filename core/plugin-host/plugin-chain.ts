/**
 * A route's plugin chain (global entries first, then the route's, in config order), built once per
 * generation. It runs each phase's hooks for one request, taking the synchronous path while the
 * hooks do not await and continuing asynchronously from the first one that does.
 *
 * Everything a plugin hands back is checked whole before any of it is applied (result-rules.ts:
 * the one header rule of core/lifecycle/header-rule.ts, a bound on header bytes, final statuses,
 * paths of visible ASCII). What breaks the rules is the plugin's failure, named (`plugin "x" set
 * request header "x-a" to a value with a control character (0x01)`), and its entry's onError
 * applies: `closed` answers 500, `open` skips it. Content-Length stays Weir's in both directions:
 * the framing is the body's, not a plugin's.
 */
import { HOP_BY_HOP } from "../lifecycle/hop-by-hop.js";
import type { ProxyRequest } from "../lifecycle/prepare-request.js";
import { PluginFailure, type PluginInstance } from "./plugin-instance.js";
import { releaseInstance, type PluginSlot } from "./plugin-slot.js";
import { MALFORMED_RESULT, resultFault } from "./result-rules.js";

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

/** Request headers Weir sets itself (prepare-request.ts upstreamHeaders): a plugin's value is dropped. */
const RESERVED_REQUEST = new Set(["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-request-id", "traceparent", "content-length"]);
/** Response headers Weir sets itself (the framing and the request id): a plugin's value is dropped. */
const RESERVED_RESPONSE = new Set(["content-length", "x-request-id"]);
const CONTINUE = 0 as const;

/**
 * The chain positions that failed during a request. A plugin that failed is not called again for
 * that request: its isolate may be gone (being rebuilt after a timeout or OOM), and running its
 * onResponse on the 500 it caused would fail again and misname the phase in the answer.
 * Only requests with a failure are in the map (`pr.failedPlugins` is the cheap check first).
 */
const failedAt = new WeakMap<ProxyRequest, Set<number>>();
const hasFailed = (pr: ProxyRequest, i: number): boolean => pr.failedPlugins !== null && failedAt.get(pr)?.has(i) === true;

/** JSON.parse that drops keys which could pollute prototypes when the value is merged later. */
function safeParse(text: string): unknown {
  // A reviver costs on every result; only a result that names one of the keys needs it.
  if (!text.includes('"__proto__"') && !text.includes('"constructor"') && !text.includes('"prototype"')) return JSON.parse(text);
  return JSON.parse(text, (k, v) => (k === "__proto__" || k === "constructor" || k === "prototype" ? undefined : v));
}

/**
 * A hook's result string as an object Weir can use: logs and metrics it wrote are taken whatever
 * else it holds (they tell what the plugin did), then the rest is checked whole (result-rules.ts).
 */
function parseResult(inst: PluginInstance, pr: ProxyRequest, hook: string, r: string): Record<string, unknown> | PluginFailure {
  let out: unknown;
  try { out = safeParse(r); } catch { out = null; }
  if (typeof out !== "object" || out === null || Array.isArray(out)) return inst.refuse(hook, MALFORMED_RESULT.detail, MALFORMED_RESULT.code, pr.requestId);
  const o = out as Record<string, unknown>;
  if (o.l !== undefined) pr.pluginLogs(inst.name, o.l);
  if (o.m !== undefined) inst.applyMetrics(o.m, hook);
  const fault = resultFault(o, hook, pr.gen.limits.maxHeaderBytes);
  return fault === null ? o : inst.refuse(hook, fault.detail, fault.code, pr.requestId);
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
    const out = parseResult(pr.pinned![i]!, pr, "onRequest", r);
    if (out instanceof PluginFailure) return this.failed(pr, i, out);
    if (out.v !== undefined) pr.varsJson = String(out.v);
    if (out.c !== undefined) pr.consumer = out.c === null ? null : String(out.c);
    if (out.h !== undefined) applyRequestHeaders(pr, out.h as string[]);
    if (out.ro !== undefined) pr.responseOps = pr.responseOps === null ? out.ro as string[][] : pr.responseOps.concat(out.ro as string[][]);
    if (out.p !== undefined) pr.pathOverride = out.p as string;
    if (out.r !== undefined) return localFrom(out.r);
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
    const out = parseResult(inst, pr, "onResponse", r);
    if (out instanceof PluginFailure) return fail(out);
    if (out.v !== undefined) pr.varsJson = String(out.v);
    if (out.c !== undefined) pr.consumer = out.c === null ? null : String(out.c);
    if (out.h !== undefined) {
      // The upstream's body keeps its own Content-Length; a local answer gets one when it is sent.
      const next = dropHopByHop(out.h as string[]);
      if (state.local === null) for (let k = 0; k < state.headers.length; k += 2) if (state.headers[k]!.toLowerCase() === "content-length") next.push(state.headers[k]!, state.headers[k + 1]!);
      state.headers = next;
    }
    if (out.s !== undefined) {
      const before = state.status;
      state.status = out.s as number;
      // 204 and 304 have no body (RFC 9110 §15.3.5, §15.4.5): across that line the upstream's
      // Content-Length no longer describes what is sent (a client would wait for it, or count it
      // against nothing), so the answer goes without one.
      if (state.local === null && noBody(before) !== noBody(state.status)) state.headers = withoutLength(state.headers);
    }
    if (out.r !== undefined) setLocal(state, localFrom(out.r));
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
        packed = pack("onLog", pr, status, responseHeaders.join("\n"), `{"total":${(now - pr.startedAt).toFixed(3)},"upstream":${upstream.toFixed(3)}}`);
      }
      inst.enqueueLog(packed);
    }
  }

  // ---- shared -----------------------------------------------------------------------------

  /**
   * Applies the entry's onError to a failure. The 500 says which plugin failed where, and what
   * Weir refused when it refused a result; a plugin's own error message stays in the log.
   */
  private failed(pr: ProxyRequest, i: number, f: PluginFailure): LocalResponse | typeof CONTINUE {
    pr.pluginFailed(this.slots[i]!, f);
    let set = failedAt.get(pr);
    if (!set) failedAt.set(pr, (set = new Set()));
    set.add(i);
    if (this.slots[i]!.entry.onError === "open") return CONTINUE;
    return jsonError(500, f.code, `the plugin "${f.plugin}" failed in ${f.hook}${f.detail !== null ? `: it ${f.detail}` : ""}`, pr.requestId);
  }
}

/** A ctx.respond answer, checked already (result-rules.ts). */
function localFrom(raw: unknown): LocalResponse {
  const r = raw as { s: number; b?: string; h?: string[]; j?: unknown };
  const h = dropHopByHop(r.h ?? []);
  const body = r.b ?? "";
  if (!h.some((n, k) => k % 2 === 0 && n.toLowerCase() === "content-type") && body !== "")
    h.push("content-type", r.j ? "application/json; charset=utf-8" : "text/plain; charset=utf-8");
  return { status: r.s, headers: h, body };
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
    } else if (!HOP_BY_HOP.has(lower) && !RESERVED_RESPONSE.has(lower)) {
      if (out === headers) out = headers.slice();
      out.push(op[1]!, op[2]!);
    }
  }
  return out;
}

const noBody = (status: number) => status === 204 || status === 304;

function withoutLength(list: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) if (list[i]!.toLowerCase() !== "content-length") out.push(list[i]!, list[i + 1]!);
  return out;
}

function setLocal(state: ResponseState, local: LocalResponse): void {
  state.local = local;
  state.status = local.status;
  state.headers = local.headers;
}

/** Drops hop-by-hop headers, Content-Length (Weir frames the body it sends) and X-Request-Id (Weir's). */
function dropHopByHop(list: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < list.length; i += 2) {
    const lower = list[i]!.toLowerCase();
    if (!HOP_BY_HOP.has(lower) && !RESERVED_RESPONSE.has(lower)) out.push(list[i]!, list[i + 1]!);
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
    if (HOP_BY_HOP.has(lower) || RESERVED_REQUEST.has(lower)) continue;
    forward.push(list[i]!, list[i + 1]!);
  }
  // The body is the client's: so is its length, whatever the plugin made of the header (undici
  // refuses a length that disagrees with the body, which would be a 502 blamed on the upstream).
  if (pr.inbound.contentLength >= 0) forward.push("content-length", String(pr.inbound.contentLength));
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
