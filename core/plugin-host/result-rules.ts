/**
 * What Weir accepts from a hook's result before any of it is applied (see sandbox-main.ts for the
 * result's shape): the headers it set (the one header rule, core/lifecycle/header-rule.ts, and a
 * bound on their bytes), a final status, a path of visible ASCII, a ctx.respond answer. The plugin
 * chain and `weir/sdk/testing` both ask here, so a plugin's test sees the failure Weir would give.
 *
 * A result is checked whole, whatever its shape (a plugin can reach the sandbox's own fields and
 * hand back numbers, nulls or objects where strings belong): a fault is a value, never a throw.
 */
import { ErrorCodes } from "../errors.js";
import { headerListFault, shownName } from "../lifecycle/header-rule.js";

/**
 * Bytes of headers one hook may hand back (a name, ": ", a value and CRLF per field), unless
 * `limits.maxHeaderBytes` is larger: a plugin cannot make Weir send a head of megabytes.
 */
export const PLUGIN_HEADER_BYTES = 65536;

/** A path a plugin sets: "/" then visible ASCII (RFC 9112 §3.2), no "?" (the query is kept) and no "#". */
const PATH = /^\/[\x21-\x22\x24-\x3e\x40-\x7e]*$/;

/** What Weir refused, worded to follow `plugin "x" `: `set request header "x-a" to a value with ...`. */
export interface ResultFault {
  detail: string;
  code: typeof ErrorCodes.PLUGIN_INVALID_HEADER | typeof ErrorCodes.PLUGIN_INVALID_RESULT;
}

const header = (detail: string): ResultFault => ({ detail, code: ErrorCodes.PLUGIN_INVALID_HEADER });
const result = (detail: string): ResultFault => ({ detail, code: ErrorCodes.PLUGIN_INVALID_RESULT });

/** A final status (RFC 9110 §15: a 1xx is interim, never the answer). */
export const isFinalStatus = (s: unknown): s is number => typeof s === "number" && Number.isInteger(s) && s >= 200 && s <= 599;
const STATUS_RULE = "(a final status, an integer 200-599)";

/** A result that is not a JSON object. */
export const MALFORMED_RESULT: ResultFault = result("handed back a malformed result");

/**
 * The first thing in `out` Weir cannot use, or null. `maxHeaderBytes` is the listener's
 * limits.maxHeaderBytes (the bound on a hook's headers is the larger of it and PLUGIN_HEADER_BYTES).
 */
export function resultFault(out: Record<string, unknown>, hook: string, maxHeaderBytes: number): ResultFault | null {
  const max = Math.max(PLUGIN_HEADER_BYTES, maxHeaderBytes);
  const request = hook === "onRequest";
  if (out.h !== undefined) {
    const fault = headersFault(out.h, request ? "request header" : "response header", max);
    if (fault !== null) return header(fault);
  }
  if (request && out.ro !== undefined) {
    const fault = opsFault(out.ro, max);
    if (fault !== null) return header(fault);
  }
  if (request && out.p !== undefined) {
    if (typeof out.p !== "string" || !PATH.test(out.p))
      return result(`set ctx.request.path to an invalid path ${typeof out.p === "string" ? shownName(out.p) : String(out.p)} (it must start with "/" and hold only visible ASCII: no spaces, control characters, "?" or "#"; percent-encode the rest)`);
  }
  if (!request && out.s !== undefined && !isFinalStatus(out.s))
    return result(`set ctx.response.status to an invalid status ${String(out.s)} ${STATUS_RULE}`);
  if (out.r !== undefined) {
    const r = out.r as { s?: unknown; b?: unknown; h?: unknown } | null;
    if (typeof r !== "object" || r === null) return result("gave ctx.respond something that is not an answer");
    if (!isFinalStatus(r.s)) return result(`gave ctx.respond an invalid status ${String(r.s)} ${STATUS_RULE}`);
    if (r.b !== undefined && typeof r.b !== "string") return result("gave ctx.respond a body that is not a string");
    const fault = headersFault(r.h ?? [], "ctx.respond header", max);
    if (fault !== null) return header(fault);
  }
  return null;
}

function headersFault(list: unknown, what: string, max: number): string | null {
  const fault = headerListFault(list, what);
  if (fault !== null) return "set " + fault;
  let bytes = 0;
  for (const x of list as string[]) bytes += x.length + 2;
  return sizeFault(bytes, what, max);
}

function sizeFault(bytes: number, what: string, max: number): string | null {
  return bytes > max ? `set ${what}s of ${bytes} bytes (at most ${max}: ${PLUGIN_HEADER_BYTES} or limits.maxHeaderBytes, the larger)` : null;
}

/** Response header operations queued in onRequest: ["a", name, value] or ["d", name]. */
function opsFault(ops: unknown, max: number): string | null {
  if (!Array.isArray(ops)) return "set response headers that are not a list of operations";
  let bytes = 0;
  for (const op of ops) {
    if (!Array.isArray(op) || (op[0] !== "a" && op[0] !== "d")) return "set response headers that are not a list of operations";
    const fault = headerListFault(op[0] === "a" ? [op[1], op[2]] : [op[1], ""], "response header");
    if (fault !== null) return "set " + fault;
    if (op[0] === "a") bytes += (op[1] as string).length + (op[2] as string).length + 4;
  }
  return sizeFault(bytes, "response header", max);
}
