/**
 * Random plugin results for the fuzz test (test/plugins/result-fuzz.test.ts), reproducible from
 * a seed: case `i` of seed `s` is always the same. The fixture plugin
 * (test/fixtures/plugins/fuzz-results.ts) bundles this file and acts case `i` out in the sandbox;
 * the test reads the same case to know what to expect. No imports: it runs in an isolate too.
 *
 * A case is one thing a hook hands back: a header (name and value over all 256 byte values, now
 * and then beyond Latin-1, now and then huge), a status (integers in and out of range, fractions,
 * NaN, strings, booleans, null), a ctx.respond body of every JS type, a path, or a result of a
 * shape the SDK never makes (the sandbox's own fields set to numbers, nulls, objects).
 */

export type CaseKind =
  | "request-header" | "early-response-header" | "response-header" | "respond-header"
  | "respond-status" | "response-status" | "respond-body" | "path"
  | "raw-headers" | "raw-respond" | "raw-status" | "raw-path";

export type BodyType =
  | "undefined" | "null" | "boolean" | "number" | "bigint" | "string" | "huge-string" | "symbol" | "function"
  | "object" | "array" | "circular" | "date" | "map" | "typed-array" | "throwing-toJSON" | "deep";

export interface PluginResultCase {
  index: number;
  kind: CaseKind;
  hook: "onRequest" | "onResponse";
  name?: string;
  value?: string;
  /** For status kinds: how to make the status value (see statusValue). */
  status?: { type: "number"; n: number } | { type: "string"; s: string } | { type: "boolean"; b: boolean } | { type: "null" } | { type: "bigint"; n: number };
  body?: BodyType;
  /** Seed of the body's contents. */
  bodySeed?: number;
  path?: string;
  /** For raw kinds: a JSON-able value to put where the sandbox keeps its result. */
  raw?: unknown;
}

/** mulberry32: small, fast, good enough to spread cases. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/** Names Weir treats as its own or as hop-by-hop, and a few the client's answer has anyway. */
export const SPECIAL_NAMES = [
  "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade", "expect",
  "proxy-connection", "x-request-id", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "traceparent",
  "content-type", "set-cookie", "date", "server", "Content-Length", "X-Request-Id",
];

type Rng = () => number;
const int = (r: Rng, lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
const pick = <T>(r: Rng, list: readonly T[]): T => list[Math.floor(r() * list.length)]!;
function weighted<T extends string>(r: Rng, table: readonly (readonly [T, number])[]): T {
  const total = table.reduce((n, [, w]) => n + w, 0);
  let x = r() * total;
  for (const [v, w] of table) { if ((x -= w) < 0) return v; }
  return table[table.length - 1]![0];
}

const fromCodes = (codes: number[]) => {
  let s = "";
  for (let i = 0; i < codes.length; i += 4096) s += String.fromCharCode(...codes.slice(i, i + 4096));
  return s;
};
const bytes = (r: Rng, n: number) => fromCodes(Array.from({ length: n }, () => int(r, 0, 255)));
const printable = (r: Rng, n: number) => fromCodes(Array.from({ length: n }, () => int(r, 0x20, 0x7e)));
const token = (r: Rng, n: number) => Array.from({ length: n }, () => pick(r, TOKEN_CHARS.split(""))).join("");
/** A string of about `n` characters made by repeating a short random piece (cheap to make huge). */
const huge = (r: Rng, n: number, piece: (r: Rng, n: number) => string) => {
  const p = piece(r, 64);
  return p.repeat(Math.ceil(n / 64)).slice(0, n);
};

function headerName(r: Rng): string {
  switch (weighted(r, [["token", 70], ["bytes", 18], ["special", 8], ["odd", 4]] as const)) {
    case "token": return token(r, int(r, 1, 24));
    case "bytes": return bytes(r, int(r, 1, 8));
    case "special": return pick(r, SPECIAL_NAMES);
    default: return pick(r, ["", "x".repeat(2000), "x a", "x:a", "x\u0000", "ä", "x\u20ac", "\u00ff"]);
  }
}

function headerValue(r: Rng): string {
  switch (weighted(r, [["bytes", 40], ["printable", 30], ["one-control", 10], ["beyond-latin1", 3], ["huge-ok", 2], ["huge-too-big", 2], ["edge", 13]] as const)) {
    case "bytes": return bytes(r, int(r, 0, 40));
    case "printable": return printable(r, int(r, 0, 60));
    case "one-control": { const s = printable(r, int(r, 2, 20)); const at = int(r, 0, s.length); return s.slice(0, at) + String.fromCharCode(pick(r, [0, 1, 9, 10, 13, 27, 31, 127])) + s.slice(at); }
    case "beyond-latin1": return printable(r, 4) + pick(r, ["\u20ac", "\u0100", "\ud83d\ude00", "\ud800", "\uffff"]);
    case "huge-ok": return huge(r, int(r, 20_000, 40_000), pick(r, [printable, bytes]));
    case "huge-too-big": return huge(r, int(r, 70_000, 1_000_000), printable);
    default: return pick(r, ["", " ", "\t", " a ", "\ta\t", "\u0080", "\u00ff", "a\u00e9b", "\u007f", "\u0000", "\r\n", "x\r\ninjected: 1"]);
  }
}

function statusValue(r: Rng): PluginResultCase["status"] {
  switch (weighted(r, [["valid", 40], ["1xx", 8], ["low", 6], ["high", 8], ["fraction", 6], ["special", 8], ["string", 12], ["boolean", 4], ["null", 4], ["bigint", 4]] as const)) {
    case "valid": return { type: "number", n: int(r, 200, 599) };
    case "1xx": return { type: "number", n: int(r, 100, 199) };
    case "low": return { type: "number", n: int(r, -1000, 99) };
    case "high": return { type: "number", n: int(r, 600, 100_000) };
    case "fraction": return { type: "number", n: int(r, 200, 599) + pick(r, [0.5, 0.1, 1e-9]) };
    case "special": return { type: "number", n: pick(r, [Number.NaN, Infinity, -Infinity, -0, 0, 2 ** 53 + 1, 1e308]) };
    case "string": return { type: "string", s: pick(r, ["200", "404", " 503 ", "2e2", "abc", "", "0x1f4", "600", "199"]) };
    case "boolean": return { type: "boolean", b: r() < 0.5 };
    case "null": return { type: "null" };
    default: return { type: "bigint", n: pick(r, [200, 99, 404, 600]) };
  }
}

/** The status a case hands to ctx.respond or ctx.response.status. */
export function statusOf(s: NonNullable<PluginResultCase["status"]>): unknown {
  switch (s.type) {
    case "number": return s.n;
    case "string": return s.s;
    case "boolean": return s.b;
    case "null": return null;
    case "bigint": return BigInt(s.n);
  }
}

/** The ctx.respond body of a case (made the same way in the isolate and in the test). */
export function bodyOf(type: BodyType, seed: number): unknown {
  const r = prng(seed);
  switch (type) {
    case "undefined": return undefined;
    case "null": return null;
    case "boolean": return r() < 0.5;
    case "number": return pick(r, [0, -0, 1.5, Number.NaN, Infinity, -Infinity, 1e308, 2 ** 53 + 1, -42]);
    case "bigint": return BigInt(int(r, 0, 1000));
    case "string": return r() < 0.2 ? printable(r, 10) + "\ud800" + printable(r, 3) : bytes(r, int(r, 0, 300));
    case "huge-string": return huge(r, int(r, 100_000, 4_000_000), pick(r, [printable, bytes]));
    case "symbol": return Symbol("s");
    case "function": return () => 1;
    case "object": { const o: Record<string, unknown> = {}; for (let i = 0, n = int(r, 0, 8); i < n; i++) o[bytes(r, int(r, 1, 6))] = r() < 0.5 ? bytes(r, 8) : int(r, -5, 5); return o; }
    case "array": return [1, "a", null, true, { x: [2] }, bytes(r, 5)];
    case "circular": { const o: Record<string, unknown> = { a: 1 }; o.self = o; return o; }
    case "date": return new Date(int(r, 0, 2_000_000_000) * 1000);
    case "map": return new Map([[1, 2]]);
    case "typed-array": return new Uint8Array([1, 2, 3]);
    case "throwing-toJSON": return { toJSON() { throw new Error("no"); } };
    case "deep": { let v: unknown = "leaf"; for (let i = 0, n = int(r, 100, 3000); i < n; i++) v = [v]; return v; }
  }
}

function rawValue(r: Rng): unknown {
  return pick(r, [null, 0, 1, -1, "", "x", true, false, [], {}, [null], ["a"], ["a", 1], [1, 2], ["a", "b", "c"], [{}, "x"], { s: 200 }, { s: "200", b: "x", h: [] }, { s: 200, b: 5 }, { s: 200, h: "x" }, { s: 200, h: [1, 2] }, [["a", "x", "1"]]]);
}

const KINDS = [
  ["request-header", 16], ["early-response-header", 10], ["response-header", 14], ["respond-header", 12],
  ["respond-status", 8], ["response-status", 8], ["respond-body", 14], ["path", 8],
  ["raw-headers", 4], ["raw-respond", 3], ["raw-status", 2], ["raw-path", 1],
] as const;

export function caseOf(seed: number, index: number): PluginResultCase {
  const r = prng((seed ^ Math.imul(index + 1, 0x9e3779b1)) >>> 0);
  const kind = weighted(r, KINDS);
  const c: PluginResultCase = { index, kind, hook: "onRequest" };
  switch (kind) {
    case "request-header": case "early-response-header": case "respond-header":
      c.name = headerName(r); c.value = headerValue(r); break;
    case "response-header":
      c.hook = "onResponse"; c.name = headerName(r); c.value = headerValue(r); break;
    case "respond-status": c.hook = r() < 0.5 ? "onRequest" : "onResponse"; c.status = statusValue(r); break;
    case "response-status": c.hook = "onResponse"; c.status = statusValue(r); break;
    case "respond-body":
      c.hook = r() < 0.5 ? "onRequest" : "onResponse";
      c.body = weighted(r, [["undefined", 4], ["null", 4], ["boolean", 4], ["number", 6], ["bigint", 5], ["string", 16], ["huge-string", 2], ["symbol", 5], ["function", 5], ["object", 10], ["array", 5], ["circular", 5], ["date", 4], ["map", 3], ["typed-array", 3], ["throwing-toJSON", 4], ["deep", 3]] as const);
      c.bodySeed = int(r, 0, 2 ** 31);
      break;
    case "path": c.path = pick(r, ["/", ""]) + (r() < 0.5 ? bytes(r, int(r, 0, 20)) : printable(r, int(r, 0, 40))); break;
    case "raw-headers": c.hook = r() < 0.5 ? "onRequest" : "onResponse"; c.raw = rawValue(r); break;
    case "raw-respond": c.hook = r() < 0.5 ? "onRequest" : "onResponse"; c.raw = rawValue(r); break;
    case "raw-status": c.hook = "onResponse"; c.raw = pick(r, ["200", "abc", true, [], {}, [200]]); break;
    case "raw-path": c.raw = pick(r, [1, null, true, [], {}, ["/a"]]); break;
  }
  return c;
}
