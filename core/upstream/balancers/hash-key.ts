/**
 * Where `balance: hash` reads its key (`hashOn`), compiled once per generation into a reader:
 * `header:NAME`, `cookie:NAME`, `ip` (the trusted client address) or `path` (the canonical path).
 */
import type { PickContext } from "./balancer.js";

export type KeyReader = (ctx: PickContext) => string | undefined;

/** The default when `hashOn` is not given: the client address, like nginx `ip_hash`. */
export const DEFAULT_HASH_ON = "ip";

export function keyReader(hashOn: string = DEFAULT_HASH_ON): KeyReader {
  if (hashOn === "ip") return (ctx) => ctx.clientIp;
  if (hashOn === "path") return (ctx) => ctx.path;
  if (hashOn.startsWith("header:")) {
    const name = hashOn.slice(7).toLowerCase();
    return (ctx) => ctx.header(name);
  }
  if (hashOn.startsWith("cookie:")) {
    const name = hashOn.slice(7);
    return (ctx) => {
      const h = ctx.header("cookie");
      return h === undefined ? undefined : cookieValue(h, name);
    };
  }
  throw new Error(`hashOn "${hashOn}" must be header:NAME, cookie:NAME, ip or path`);
}

/** The value of cookie `name` in a Cookie header (RFC 6265 §5.4: `a=1; b=2`), without splitting it. */
export function cookieValue(header: string, name: string): string | undefined {
  let at = 0;
  while (at < header.length) {
    while (header.charCodeAt(at) === 32 || header.charCodeAt(at) === 59) at++; // spaces and ';'
    const end = header.indexOf(";", at);
    const stop = end < 0 ? header.length : end;
    if (header.startsWith(name, at) && header.charCodeAt(at + name.length) === 61) {
      return header.slice(at + name.length + 1, stop).trim();
    }
    at = stop + 1;
  }
  return undefined;
}

/** 32-bit FNV-1a over UTF-16 code units, then murmur3's finaliser so nearby keys spread over the ring. */
export function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
