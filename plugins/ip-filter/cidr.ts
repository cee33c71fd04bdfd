/**
 * CIDR parsing and matching for IPv4 and IPv6, in plain TypeScript (the sandbox has no node:net).
 * Every address becomes 16 bytes: IPv4 is stored IPv4-mapped (::ffff:a.b.c.d, RFC 4291 §2.5.5.2)
 * so that a client seen as "::ffff:10.0.0.1" on a dual-stack socket matches "10.0.0.0/8".
 */

export interface Cidr { bytes: Uint8Array; prefix: number; text: string }

const V4 = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(?:\\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}";
const H = "[0-9A-Fa-f]{1,4}";
const V6 = [
  `(?:${H}:){7}${H}`, `(?:${H}:){1,7}:`, `(?:${H}:){1,6}:${H}`, `(?:${H}:){1,5}(?::${H}){1,2}`,
  `(?:${H}:){1,4}(?::${H}){1,3}`, `(?:${H}:){1,3}(?::${H}){1,4}`, `(?:${H}:){1,2}(?::${H}){1,5}`,
  `${H}:(?::${H}){1,6}`, `:(?:(?::${H}){1,7}|:)`,
  `(?:${H}:){6}${V4}`,
  ...compressedWithV4Tail(),
].join("|");

/** "::" forms ending in an IPv4 address: h groups before "::", t after, h + t <= 5. */
function compressedWithV4Tail(): string[] {
  const out: string[] = [];
  for (let h = 0; h <= 5; h++) {
    for (let t = 0; t + h <= 5; t++) {
      const head = h === 0 ? "" : `(?:${H}:){${h - 1}}${H}`;
      out.push(`${head}::(?:${H}:){${t}}${V4}`);
    }
  }
  return out;
}

/** JSON Schema patterns the config is checked with (so a bad CIDR fails at validate). */
export const CIDR_V4_PATTERN = `^${V4}(?:/(?:3[0-2]|[12]?[0-9]))?$`;
export const CIDR_V6_PATTERN = `^(?:${V6})(?:/(?:12[0-8]|1[01][0-9]|[1-9]?[0-9]))?$`;

function parseV4(s: string, out: Uint8Array, at: number): boolean {
  const parts = s.split(".");
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!/^[0-9]{1,3}$/.test(p)) return false;
    const n = Number(p);
    if (n > 255) return false;
    out[at + i] = n;
  }
  return true;
}

/** An address as 16 bytes, or null. Accepts IPv4, IPv6 (with "::", an IPv4 tail, a %zone). */
export function parseAddress(input: string): Uint8Array | null {
  let s = input.trim();
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  if (s.startsWith("[") && s.endsWith("]")) s = s.slice(1, -1);
  const out = new Uint8Array(16);
  if (!s.includes(":")) {
    out[10] = 0xff; out[11] = 0xff;
    return parseV4(s, out, 12) ? out : null;
  }
  let tail: Uint8Array | null = null;
  const lastColon = s.lastIndexOf(":");
  if (s.indexOf(".", lastColon) >= 0) {
    tail = new Uint8Array(4);
    if (!parseV4(s.slice(lastColon + 1), tail, 0)) return null;
    s = s.slice(0, lastColon + 1) + "0:0"; // two groups stand in for the IPv4 tail
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const head = halves[0] === "" ? [] : halves[0]!.split(":");
  const rest = halves.length === 2 ? (halves[1] === "" ? [] : halves[1]!.split(":")) : [];
  const groups = halves.length === 2 ? head.length + rest.length : head.length;
  if (halves.length === 2 ? groups > 7 : groups !== 8) return null;
  const all = halves.length === 2 ? [...head, ...new Array<string>(8 - groups).fill("0"), ...rest] : head;
  for (let i = 0; i < 8; i++) {
    const g = all[i]!;
    if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return null;
    const n = parseInt(g, 16);
    out[i * 2] = n >> 8; out[i * 2 + 1] = n & 0xff;
  }
  if (tail) out.set(tail, 12);
  return out;
}

/** "10.0.0.0/8", "2001:db8::/32", or a single address. Throws on anything else. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf("/");
  const addr = slash >= 0 ? text.slice(0, slash) : text;
  const bytes = parseAddress(addr);
  if (!bytes) throw new Error(`not an IP address or CIDR: ${text}`);
  const v4 = !addr.includes(":");
  const max = v4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) throw new Error(`bad prefix length in ${text}`);
    prefix = Number(p);
  }
  return { bytes, prefix: v4 ? prefix + 96 : prefix, text };
}

export function matches(c: Cidr, addr: Uint8Array): boolean {
  const full = c.prefix >> 3;
  for (let i = 0; i < full; i++) if (c.bytes[i] !== addr[i]) return false;
  const bits = c.prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (c.bytes[full]! & mask) === (addr[full]! & mask);
}

export function matchesAny(list: readonly Cidr[], addr: Uint8Array): boolean {
  for (const c of list) if (matches(c, addr)) return true;
  return false;
}
