/**
 * The one check of a request's authority, for the Host header and for an absolute-form target:
 * `uri-host [":" port]` (RFC 9110 §7.2, RFC 3986 §3.2.2), with a host that is not empty, because
 * "a recipient that processes such a URI reference MUST reject it as invalid" (RFC 9110 §4.2.1),
 * and without userinfo, which a recipient "SHOULD ... treat ... as an error" (RFC 9110 §4.2.4):
 * `http://trusted@evil/` is the classic way to show one host and mean another.
 *
 * Why so strict: the authority routes the request (match.host) and is forwarded as
 * X-Forwarded-Host; a Host with a space, a slash or an "@" in it would be read differently by
 * the next server than by Weir (RFC 9112 §3.2: a Host "with an invalid field value" is 400).
 */

// IP-literal (IPv6, possibly with an embedded IPv4), or a reg-name / IPv4address: unreserved and
// sub-delims. Not accepted, though RFC 3986 allows them: IPvFuture ("[v1.x]"), and percent-escapes
// in a name (`ex%61mple.com`), which no DNS name needs and which would match no `match.host`
// while a server behind could decode them into one (nginx refuses them too).
const AUTHORITY = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=]+)(?::[0-9]*)?$/;

/** Whether `text` is a usable `host[:port]`. */
export function validAuthority(text: string): boolean {
  return AUTHORITY.test(text);
}

/** Why an authority is refused, for the 400's message. */
export function authorityProblem(text: string, where: string): string {
  if (text.includes("@")) return `${where} has userinfo ("user@"), which is not accepted (RFC 9110 section 4.2.4)`;
  const host = text.startsWith("[") ? text : text.replace(/:[^:]*$/, "");
  if (host === "") return `${where} has an empty host (RFC 9110 section 4.2.1)`;
  return `${where} is not a valid host[:port] (RFC 9110 section 7.2)`;
}
