/**
 * The one rule for every header Weir writes that no HTTP parser has checked: what plugins set
 * (request headers, response headers, ctx.respond) and the heads of the lean listener. node:http
 * and undici apply the same rule and throw when it is broken; checking first turns that throw (a
 * crash in a listener, a 502 blamed on the upstream) into the plugin's failure, named.
 *
 * - A name is a token (RFC 9110 §5.1): `!#$%&'*+-.^_\`|~`, digits and letters, at least one.
 * - A value (RFC 9110 §5.5) holds visible ASCII, obs-text (0x80-0xFF), spaces and horizontal tabs;
 *   no other control character (NUL, CR and LF would end the head early: response splitting) and
 *   no character beyond Latin-1 (the wire carries bytes; node:http refuses them too).
 */

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const BAD_VALUE_CHAR = /[^\t\x20-\x7e\x80-\xff]/;
const BAD_TOKEN_CHAR = /[^!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/** Whether `name` is a token. */
export function isHeaderName(name: string): boolean {
  return TOKEN.test(name);
}

/** Whether `value` may be a field value. */
export function isHeaderValue(value: string): boolean {
  return !BAD_VALUE_CHAR.test(value);
}

const hex2 = (c: number) => "0x" + c.toString(16).padStart(2, "0");

/** What is wrong with a value, e.g. "a control character (0x01)", or null when it is fine. */
export function headerValueFault(value: string): string | null {
  const m = BAD_VALUE_CHAR.exec(value);
  if (m === null) return null;
  const c = m[0].charCodeAt(0);
  return c > 0xff ? `a character outside Latin-1 (U+${c.toString(16).toUpperCase().padStart(4, "0")})` : `a control character (${hex2(c)})`;
}

/** What is wrong with a name, e.g. "' ' (0x20) is not allowed in a token", or null. */
export function headerNameFault(name: string): string | null {
  if (name === "") return "empty";
  const m = BAD_TOKEN_CHAR.exec(name);
  if (m === null) return null;
  const c = m[0].charCodeAt(0);
  const shown = c >= 0x21 && c <= 0x7e ? `'${m[0]}' ` : c === 0x20 ? "' ' " : "";
  return `${shown}(${c > 0xff ? "U+" + c.toString(16).toUpperCase().padStart(4, "0") : hex2(c)}) is not allowed in a token`;
}

/** A name as a message shows it: quoted, control characters escaped, cut at 100 characters. */
export function shownName(name: string): string {
  return JSON.stringify(name.length > 100 ? name.slice(0, 100) + "..." : name);
}

/**
 * Checks a flat [name, value, ...] list that came from outside Weir's parsers. Returns null when
 * every pair is well-formed, else what is wrong with the first that is not, worded to follow
 * "set <what> ...": `request header "x-a" to a value with a control character (0x01)`.
 * `what` names the field, e.g. "request header".
 */
export function headerListFault(list: unknown, what: string): string | null {
  if (!Array.isArray(list) || list.length % 2 !== 0) return `${what}s that are not a list of names and values`;
  for (let i = 0; i < list.length; i += 2) {
    const fault = headerFault(list[i], list[i + 1], what);
    if (fault !== null) return fault;
  }
  return null;
}

/** The same check for one name and value. */
export function headerFault(name: unknown, value: unknown, what: string): string | null {
  if (typeof name !== "string") return `a ${what} whose name is not a string`;
  if (!isHeaderName(name)) return `a ${what} with an invalid name ${shownName(name)} (${headerNameFault(name)})`;
  if (typeof value !== "string") return `${what} ${shownName(name)} to a value that is not a string`;
  if (!isHeaderValue(value)) return `${what} ${shownName(name)} to a value with ${headerValueFault(value)}`;
  return null;
}
