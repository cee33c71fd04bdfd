/**
 * Hop-by-hop headers (RFC 9110 §7.6.1): meaningful for one connection only, so a proxy removes
 * them in both directions, together with every header a `Connection` header names.
 * `expect` is removed too: Weir answers `100-continue` to the client itself (when the request is
 * about to go upstream), and
 * undici refuses the header.
 */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect",
]);

/** The header names listed in a Connection value, minus those we drop anyway. */
export function connectionListed(value: string, into: Set<string>): void {
  for (const token of value.split(",")) {
    const t = token.trim().toLowerCase();
    if (t && !HOP_BY_HOP.has(t) && t !== "close") into.add(t);
  }
}

/** Removes pairs whose lower-cased name is in `names` from a flat [name, value, ...] list. */
export function removeNamed(flat: string[], names: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) if (!names.has(flat[i]!.toLowerCase())) out.push(flat[i]!, flat[i + 1]!);
  return out;
}
