/**
 * A route's `match.path`, compiled once per generation. Every pattern matches on a segment
 * boundary: `/api` matches `/api` and `/api/...` but not `/apix`; `/users/:id` captures `id`;
 * a trailing `*` captures the rest as `*`.
 */
export type Params = Record<string, string>;

export interface PathPattern {
  /** The pattern as written. */
  source: string;
  /** Characters of literal text; the main key of "most specific wins". */
  literalLength: number;
  paramCount: number;
  hasWildcard: boolean;
  /** The first segment when it is literal (used to index routes), else null. */
  firstLiteral: string | null;
  /**
   * Matches a canonical path. Returns the length of the matched prefix (for stripPrefix) or -1.
   * Captured parameters are written into `params` when the pattern has any.
   */
  match(path: string, params: Params | null): number;
}

type Segment = { literal: string } | { param: string } | { rest: true };

export function compilePathPattern(source: string): PathPattern {
  let clean = source.length > 1 && source.endsWith("/") ? source.slice(0, -1) : source;
  if (clean === "/") clean = "";
  const raw = clean === "" ? [] : clean.slice(1).split("/");
  const segments: Segment[] = raw.map((s, i) => {
    if (s === "*" && i === raw.length - 1) return { rest: true };
    if (s.startsWith(":") && s.length > 1) return { param: s.slice(1) };
    return { literal: s };
  });
  const literalLength = segments.reduce((n, s) => n + ("literal" in s ? s.literal.length + 1 : 0), 0);
  const paramCount = segments.filter((s) => "param" in s).length;
  const hasWildcard = segments.some((s) => "rest" in s);
  const first = segments[0];
  const firstLiteral = first && "literal" in first ? first.literal : null;

  if (paramCount === 0 && !hasWildcard) {
    // Literal prefix: one startsWith and one boundary check, no allocation.
    const prefix = clean;
    return {
      source, literalLength, paramCount, hasWildcard, firstLiteral,
      match(path) {
        if (prefix === "") return 0;
        if (!path.startsWith(prefix)) return -1;
        if (path.length !== prefix.length && path.charCodeAt(prefix.length) !== 47) return -1;
        return prefix.length;
      },
    };
  }

  return {
    source, literalLength, paramCount, hasWildcard, firstLiteral,
    match(path, params) {
      let pos = 0; // index of the "/" before the next segment
      for (const seg of segments) {
        if ("rest" in seg) {
          if (params) params["*"] = pos >= path.length ? "" : path.slice(pos + 1);
          return pos;
        }
        if (pos >= path.length || path.charCodeAt(pos) !== 47) return -1;
        let end = path.indexOf("/", pos + 1);
        if (end < 0) end = path.length;
        const value = path.slice(pos + 1, end);
        if ("literal" in seg) {
          if (value !== seg.literal) return -1;
        } else {
          if (value === "") return -1;
          if (params) params[seg.param] = safeDecode(value);
        }
        pos = end;
      }
      return pos;
    },
  };
}

function safeDecode(v: string): string {
  if (!v.includes("%")) return v;
  try { return decodeURIComponent(v); } catch { return v; }
}
