/**
 * Path parameters (`/admin;jsessionid=1/x`, RFC 3986 §3.3): many servers behind a proxy (Tomcat,
 * Jetty, Spring) drop them before routing, so `/admin;x` reaches their `/admin` handler. If Weir
 * matched the raw path, that request would miss a route protecting `/admin` and slip through a
 * catch-all route: the same bypass by spelling that path normalisation closes. So routes are
 * matched on the path without its parameters; the path is forwarded as the client wrote it.
 */

/** `/admin;a=1/x;b` -> `/admin/x`. Only called for paths that contain ";". */
export function withoutPathParameters(path: string): string {
  return path.replace(/;[^/]*/g, "");
}

/**
 * The length of the prefix of `original` that covers as many segments as the first `strippedLength`
 * characters of `stripped` (for stripPrefix, which cuts the forwarded, original path).
 */
export function originalPrefixLength(original: string, stripped: string, strippedLength: number): number {
  let segments = 0;
  for (let i = 0; i < strippedLength; i++) if (stripped.charCodeAt(i) === 47) segments++;
  let seen = 0;
  for (let i = 0; i < original.length; i++) {
    if (original.charCodeAt(i) === 47 && ++seen === segments + 1) return i;
  }
  return original.length;
}
