/**
 * Who the client is when requests come through other proxies. An incoming X-Forwarded-For is
 * believed only when the peer is one of `trustedProxies`; the client is then the right-most
 * address in the chain that is not itself a trusted proxy (the left-most entries are whatever the
 * client chose to write).
 */
import { BlockList, isIP } from "node:net";

export class TrustedProxies {
  private readonly list = new BlockList();
  readonly empty: boolean;

  /** `cidrs` are validated by parseCidr first. */
  constructor(cidrs: readonly string[]) {
    for (const c of cidrs) {
      const p = parseCidr(c);
      if (typeof p !== "string") this.list.addSubnet(p.address, p.prefix, p.family);
    }
    this.empty = cidrs.length === 0;
  }

  has(address: string): boolean {
    if (this.empty) return false;
    const family = isIP(address);
    if (family === 0) return false;
    return this.list.check(address, family === 6 ? "ipv6" : "ipv4");
  }

  /** The client address for a peer and its (joined) X-Forwarded-For value. */
  clientIp(peer: string, forwardedFor: string | undefined): string {
    if (!forwardedFor || !this.has(peer)) return peer;
    const hops = forwardedFor.split(",");
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = unmapIPv4(hops[i]!.trim());
      if (isIP(hop) === 0) return peer; // a garbled chain: trust only what we saw ourselves
      if (!this.has(hop)) return hop;
    }
    return unmapIPv4(hops[0]!.trim());
  }
}

/** "::ffff:127.0.0.1" -> "127.0.0.1" (dual-stack sockets report IPv4 peers this way). */
export function unmapIPv4(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/** Parses "10.0.0.0/8", "::1/128" or a bare address; returns an error message when invalid. */
export function parseCidr(text: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | string {
  const [address = "", prefixText, ...rest] = text.split("/");
  const family = isIP(address);
  if (family === 0 || rest.length) return `"${text}" is not an IP address or CIDR range such as 10.0.0.0/8`;
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max || (prefixText !== undefined && !/^[0-9]+$/.test(prefixText)))
    return `"${text}" has an invalid prefix length (0-${max})`;
  return { address, prefix, family: family === 4 ? "ipv4" : "ipv6" };
}
