/**
 * The router of one generation: routes compiled once, ranked once, and indexed by their first path
 * segment so that a match looks at a handful of candidates even with thousands of routes.
 *
 * "Most specific wins": more literal path characters first, then fewer parameters, then no
 * wildcard, then more host/method/header conditions; ties go to the earlier route.
 */
import { compilePathPattern, type Params, type PathPattern } from "./path-pattern.js";

export interface RouteMatchSpec {
  path: string;
  hosts: string[];
  methods: string[];
  headers: Record<string, string>;
}

export interface Routable {
  readonly index: number;
  readonly match: RouteMatchSpec;
}

interface Entry<R> {
  route: R;
  rank: number;
  pattern: PathPattern;
  exactHosts: Set<string> | null;
  hostSuffixes: string[] | null;
  methods: Set<string> | null;
  headers: [string, string][] | null;
}

export interface RouteMatch<R> {
  route: R;
  /** Length of the path prefix the pattern matched (what stripPrefix removes). */
  matchedLength: number;
  params: Params;
}

/** Reads a request header by lower-case name; only called for routes with header conditions. */
export type HeaderLookup = (name: string) => string | undefined;

const NO_PARAMS: Params = Object.freeze({}) as Params;

export class Router<R extends Routable> {
  private readonly byFirstSegment = new Map<string, Entry<R>[]>();
  private readonly generic: Entry<R>[] = [];
  readonly size: number;

  constructor(routes: readonly R[]) {
    const entries = routes.map((route) => compileEntry(route));
    entries.sort((a, b) => compareSpecificity(a, b));
    entries.forEach((e, i) => (e.rank = i));
    for (const e of entries) {
      const first = e.pattern.firstLiteral;
      if (first === null) this.generic.push(e);
      else {
        let list = this.byFirstSegment.get(first);
        if (!list) this.byFirstSegment.set(first, (list = []));
        list.push(e);
      }
    }
    this.size = entries.length;
  }

  /** Finds the most specific route for a canonical path, or null. */
  find(method: string, host: string, path: string, header: HeaderLookup): RouteMatch<R> | null {
    const slash = path.indexOf("/", 1);
    const first = slash < 0 ? path.slice(1) : path.slice(1, slash);
    const a = this.byFirstSegment.get(first);
    const b = this.generic;
    // Both lists are sorted by rank: walk them together so the first hit is the best one.
    let i = 0, j = 0;
    const na = a ? a.length : 0, nb = b.length;
    while (i < na || j < nb) {
      const e = j >= nb || (i < na && a![i]!.rank < b[j]!.rank) ? a![i++]! : b[j++]!;
      const m = tryEntry(e, method, host, path, header);
      if (m) return m;
    }
    return null;
  }
}

function tryEntry<R>(e: Entry<R>, method: string, host: string, path: string, header: HeaderLookup): RouteMatch<R> | null {
  if (e.methods !== null && !e.methods.has(method)) return null;
  if (e.exactHosts !== null || e.hostSuffixes !== null) {
    if (!(e.exactHosts?.has(host) || e.hostSuffixes?.some((s) => host.endsWith(s)))) return null;
  }
  if (e.headers !== null) {
    for (const [name, value] of e.headers) if (header(name) !== value) return null;
  }
  const params = e.pattern.paramCount > 0 || e.pattern.hasWildcard ? {} as Params : NO_PARAMS;
  const matchedLength = e.pattern.match(path, params === NO_PARAMS ? null : params);
  if (matchedLength < 0) return null;
  return { route: e.route, matchedLength, params };
}

function compileEntry<R extends Routable>(route: R): Entry<R> {
  const { match } = route;
  const hosts = match.hosts.map((h) => h.toLowerCase());
  const exact = hosts.filter((h) => !h.startsWith("*."));
  const suffixes = hosts.filter((h) => h.startsWith("*.")).map((h) => h.slice(1));
  const headerPairs = Object.entries(match.headers).map(([k, v]) => [k.toLowerCase(), v] as [string, string]);
  return {
    route,
    rank: 0,
    pattern: compilePathPattern(match.path),
    exactHosts: exact.length ? new Set(exact) : null,
    hostSuffixes: suffixes.length ? suffixes : null,
    methods: match.methods.length ? new Set(match.methods) : null,
    headers: headerPairs.length ? headerPairs : null,
  };
}

function conditions(e: Entry<unknown>): number {
  return (e.exactHosts || e.hostSuffixes ? 1 : 0) + (e.methods ? 1 : 0) + (e.headers?.length ?? 0);
}

function compareSpecificity<R extends Routable>(a: Entry<R>, b: Entry<R>): number {
  return (
    b.pattern.literalLength - a.pattern.literalLength ||
    a.pattern.paramCount - b.pattern.paramCount ||
    Number(a.pattern.hasWildcard) - Number(b.pattern.hasWildcard) ||
    conditions(b) - conditions(a) ||
    a.route.index - b.route.index
  );
}
