/**
 * Path normalisation, done once per request before routing. The canonical path is the one matched
 * *and* the one forwarded, so a rule written for `/admin` cannot be bypassed by `/public/../admin`,
 * `/%61dmin` or `//admin` (RFC 3986 §5.2.4 dot-segment removal, §6.2.2 normalisation of
 * unreserved escapes).
 *
 * Rejected (400): a bad escape, an escaped `/` or `\` (%2F, %5C: upstreams disagree on whether they
 * separate segments), NUL, a raw backslash, and dot-segments that climb above the root.
 */

/** Why a path was rejected; a value, not a throw, because it is the request path's business. */
export class PathRejection {
  constructor(readonly message: string) {}
}

const BAD_ESCAPE = new PathRejection("the path has a malformed percent-escape");
const ENCODED_SEPARATOR = new PathRejection("the path contains an encoded '/' or '\\' (%2F, %5C), which is refused");
const NUL = new PathRejection("the path contains a NUL byte");
const BACKSLASH = new PathRejection("the path contains a backslash");
const ESCAPES_ROOT = new PathRejection("the path climbs above its root with '..'");
const NOT_ABSOLUTE = new PathRejection("the request target must be an absolute path starting with '/'");

const HEX = "0123456789ABCDEF";

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

function isUnreserved(b: number): boolean {
  return (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b === 45 || b === 46 || b === 95 || b === 126;
}

/** Returns the canonical form of `path` (no query), or the reason it is refused. */
export function normalizePath(path: string): string | PathRejection {
  if (path.charCodeAt(0) !== 47) return NOT_ABSOLUTE;
  // Fast path: most paths have no escapes, no "//" and no "/." and are already canonical.
  const n = path.length;
  for (let i = 0; i < n; i++) {
    const c = path.charCodeAt(i);
    if (c === 37 || c === 92 || c === 0) return slowNormalize(path);
    if (c === 47 && i + 1 < n) {
      const next = path.charCodeAt(i + 1);
      if (next === 47 || next === 46) return slowNormalize(path);
    }
  }
  return path;
}

function slowNormalize(path: string): string | PathRejection {
  // 1. Decode escapes of unreserved characters, once; keep the others escaped (upper-case hex).
  let decoded = "";
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0) return NUL;
    if (c === 92) return BACKSLASH;
    if (c !== 37) { decoded += path[i]; continue; }
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return BAD_ESCAPE;
    const b = hi * 16 + lo;
    if (b === 0) return NUL;
    if (b === 0x2f || b === 0x5c) return ENCODED_SEPARATOR;
    decoded += isUnreserved(b) ? String.fromCharCode(b) : "%" + HEX[hi] + HEX[lo];
    i += 2;
  }
  // 2. Collapse empty segments and remove dot-segments.
  const out: string[] = [];
  const parts = decoded.split("/");
  let trailingSlash = false;
  for (let i = 1; i < parts.length; i++) {
    const seg = parts[i]!;
    const last = i === parts.length - 1;
    if (seg === "" || seg === ".") { if (last) trailingSlash = true; continue; }
    if (seg === "..") {
      if (out.length === 0) return ESCAPES_ROOT;
      out.pop();
      if (last) trailingSlash = true;
      continue;
    }
    out.push(seg);
  }
  if (out.length === 0) return "/";
  return "/" + out.join("/") + (trailingSlash ? "/" : "");
}
