/**
 * cors: answers CORS preflights itself (204, never reaching the upstream) and adds the CORS
 * response headers for allowed origins (https://fetch.spec.whatwg.org/#http-cors-protocol).
 *
 * An origin is allowed when it is listed exactly (compared case-insensitively) or the list holds
 * "*". With `credentials: true` the schema refuses "*": the allowed origin is echoed only when it
 * is listed, never an arbitrary one (that would let any site read credentialed responses).
 * `Vary: Origin` is added to every response, so caches keep per-origin answers apart.
 */
import { definePlugin, type Context } from "weir/sdk";

interface Config {
  origins: string[];
  methods: string[];
  headers?: string[];
  exposeHeaders?: string[];
  credentials: boolean;
  maxAge?: number;
}

interface Compiled {
  any: boolean;
  origins: Set<string>;
  methods: string;
  headers: string | null;
  expose: string;
  credentials: boolean;
  maxAge: string;
}

const TOKEN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";
const TOKEN_LIST = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;

let compiled: Compiled | null = null;
function compile(c: Config): Compiled {
  return {
    any: c.origins.includes("*"),
    origins: new Set(c.origins.filter((o) => o !== "*").map((o) => o.toLowerCase())),
    methods: c.methods.map((m) => m.toUpperCase()).join(", "),
    headers: c.headers ? c.headers.join(", ") : null,
    expose: (c.exposeHeaders ?? []).join(", "),
    credentials: c.credentials,
    maxAge: c.maxAge !== undefined ? String(c.maxAge) : "",
  };
}

/** The Access-Control-Allow-Origin value for this origin, or null when it is not allowed. */
function allowOrigin(c: Compiled, origin: string | undefined): string | null {
  if (origin === undefined) return null;
  if (c.origins.has(origin.toLowerCase())) return origin;
  // "*" only without credentials (the schema refuses both together); answered as "*", not echoed.
  return c.any && !c.credentials ? "*" : null;
}

function withVary(existing: string | undefined): string {
  if (existing === undefined || existing === "") return "Origin";
  if (existing.trim() === "*" || /(^|,)\s*origin\s*(,|$)/i.test(existing)) return existing;
  return existing + ", Origin";
}

function preflight(ctx: Context<Config>, c: Compiled, origin: string | undefined): void {
  const allowed = allowOrigin(c, origin);
  const h: Record<string, string> = { vary: "Origin" };
  if (allowed !== null) {
    h["access-control-allow-origin"] = allowed;
    h["access-control-allow-methods"] = c.methods;
    const asked = ctx.request.headers.get("access-control-request-headers");
    // Without a configured list, the asked headers are allowed back (if they are a token list).
    const headers = c.headers ?? (asked !== undefined && TOKEN_LIST.test(asked.trim()) ? asked.trim() : null);
    if (headers) h["access-control-allow-headers"] = headers;
    if (c.credentials) h["access-control-allow-credentials"] = "true";
    if (c.maxAge) h["access-control-max-age"] = c.maxAge;
  }
  // A refused origin gets a 204 without CORS headers: the browser then blocks the real request.
  ctx.respond(204, undefined, h);
}

export default definePlugin<Config>({
  name: "cors",
  version: "1.0.0",
  configSchema: {
    type: "object",
    properties: {
      origins: {
        type: "array", minItems: 1,
        items: { type: "string", anyOf: [{ const: "*" }, { pattern: "^(https?://[^/\\s*]+|null)$" }] },
        description: 'exact origins ("https://app.example.com") or "*"',
      },
      methods: { type: "array", minItems: 1, items: { type: "string", pattern: TOKEN }, default: ["GET", "HEAD", "PUT", "PATCH", "POST", "DELETE"] },
      headers: { type: "array", items: { type: "string", pattern: TOKEN }, description: "request headers allowed (default: those the preflight asks for)" },
      exposeHeaders: { type: "array", items: { type: "string", pattern: TOKEN } },
      credentials: { type: "boolean", default: false },
      maxAge: { type: "integer", minimum: 0, maximum: 86400, description: "seconds a preflight may be cached" },
    },
    required: ["origins"],
    additionalProperties: false,
    // Never "*" with credentials: a credentialed response must name the one origin it is for.
    if: { properties: { credentials: { const: true } }, required: ["credentials"] },
    then: { properties: { origins: { not: { contains: { const: "*" } } } } },
  },
  onRequest(ctx) {
    const c = (compiled ??= compile(ctx.config));
    if (ctx.request.method !== "OPTIONS") return;
    const origin = ctx.request.headers.get("origin");
    if (origin === undefined || !ctx.request.headers.has("access-control-request-method")) return; // a plain OPTIONS goes upstream
    preflight(ctx, c, origin);
  },
  onResponse(ctx) {
    const c = (compiled ??= compile(ctx.config));
    const h = ctx.response.headers;
    h.set("vary", withVary(h.get("vary")));
    if (h.has("access-control-allow-methods")) return; // our own preflight answer
    const allowed = allowOrigin(c, ctx.request.headers.get("origin"));
    if (allowed === null) return;
    h.set("access-control-allow-origin", allowed);
    if (c.credentials) h.set("access-control-allow-credentials", "true");
    if (c.expose) h.set("access-control-expose-headers", c.expose);
  },
});
