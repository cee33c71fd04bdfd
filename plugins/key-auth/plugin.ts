/**
 * key-auth: the request must carry one of the configured API keys in a header (default
 * `x-api-key`). The key's owner becomes `ctx.consumer`, so later plugins (rate-limit by consumer,
 * transform `${consumer}`, analytics) and the access log see who called. The key itself is removed
 * before the upstream unless `keepHeader: true`.
 *
 * Refusals: 401 with a JSON body, for a missing key, an unknown key, or the header
 * sent more than once (two values could be read differently by Weir and the upstream).
 */
import { definePlugin } from "weir/sdk";

interface Config {
  header: string;
  keys: Record<string, string>;
  keepHeader: boolean;
}

// The config is fixed for the life of this isolate (one isolate per route entry): the lookup
// table is built on the first request, never per request. A Map, not the config object, so that a
// key spelled "__proto__" or "toString" can never match an inherited property.
let keys: Map<string, string> | null = null;
let header = "x-api-key";

export default definePlugin<Config>({
  name: "key-auth",
  version: "1.0.0",
  configSchema: {
    type: "object",
    properties: {
      header: { type: "string", pattern: "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", default: "x-api-key", description: "request header carrying the key" },
      keys: {
        type: "object",
        minProperties: 1,
        propertyNames: { minLength: 1 },
        additionalProperties: { type: "string", minLength: 1 },
        description: "API key -> consumer name",
      },
      keepHeader: { type: "boolean", default: false, description: "forward the key header to the upstream" },
    },
    required: ["keys"],
    additionalProperties: false,
  },
  onRequest(ctx) {
    if (keys === null) {
      keys = new Map(Object.entries(ctx.config.keys));
      header = ctx.config.header.toLowerCase();
    }
    let key: string | undefined;
    let count = 0;
    // entries() rather than get(): get() joins repeated headers with ", ", and a repeated key
    // header must be refused, not looked up as one odd key.
    for (const [name, value] of ctx.request.headers.entries()) {
      if (name.toLowerCase() === header) { key = value; count++; }
    }
    if (count === 0) return ctx.respond(401, { error: `missing API key in the ${header} header`, requestId: ctx.requestId });
    const consumer = count === 1 && key !== undefined ? keys.get(key.trim()) : undefined;
    if (consumer === undefined) return ctx.respond(401, { error: "invalid API key", requestId: ctx.requestId });
    ctx.consumer = consumer;
    if (!ctx.config.keepHeader) ctx.request.headers.delete(header);
  },
});
