/**
 * ip-filter: `deny` and `allow` CIDR lists (IPv4 and IPv6) on the trusted client address
 * (`ctx.client.ip`: X-Forwarded-For counts only from trustedProxies). A denied address, or one
 * outside a configured `allow`, gets 403 with a JSON body and never reaches the upstream.
 * The lists are parsed once per route entry; a request is one address parse and a few byte
 * comparisons per CIDR.
 */
import { definePlugin } from "weir/sdk";
import { CIDR_V4_PATTERN, CIDR_V6_PATTERN, matchesAny, parseAddress, parseCidr, type Cidr } from "./cidr.js";

interface Config { allow?: string[]; deny?: string[] }

const cidrList = {
  type: "array",
  minItems: 1,
  items: { type: "string", anyOf: [{ pattern: CIDR_V4_PATTERN }, { pattern: CIDR_V6_PATTERN }], description: "an IPv4/IPv6 address or CIDR" },
};

let allow: Cidr[] | null = null;
let deny: Cidr[] = [];

export default definePlugin<Config>({
  name: "ip-filter",
  version: "1.0.0",
  configSchema: {
    type: "object",
    properties: { allow: cidrList, deny: cidrList },
    anyOf: [{ required: ["allow"] }, { required: ["deny"] }],
    additionalProperties: false,
  },
  onRequest(ctx) {
    if (allow === null) {
      allow = (ctx.config.allow ?? []).map(parseCidr);
      deny = (ctx.config.deny ?? []).map(parseCidr);
    }
    const addr = parseAddress(ctx.client.ip);
    // An address we cannot read is treated as matching no list: refused when an allow list exists.
    const denied = addr === null ? allow.length > 0 : matchesAny(deny, addr) || (allow.length > 0 && !matchesAny(allow, addr));
    if (denied) return ctx.respond(403, { error: "forbidden: client address not allowed", requestId: ctx.requestId });
  },
});
