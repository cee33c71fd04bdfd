/**
 * The Weir plugin SDK: everything a plugin author imports (`import { definePlugin } from "weir/sdk"`).
 *
 * A plugin is a TypeScript file whose default export is `definePlugin({...})`. Weir compiles it,
 * runs it in its own V8 isolate with memory and CPU limits, and calls its hooks for each request
 * on the routes that use it. The plugin reaches nothing of the host but the context below:
 * no `process`, no `require`, no network or files except through permissioned capabilities.
 *
 * This module has no imports: it is bundled into the sandbox as it is.
 *
 * @example
 * import { definePlugin } from "weir/sdk";
 * export default definePlugin<{ greeting: string }>({
 *   name: "hello", version: "1.0.0",
 *   configSchema: { type: "object", properties: { greeting: { type: "string" } }, required: ["greeting"] },
 *   onRequest(ctx) {
 *     if (ctx.request.path === "/blocked") return ctx.respond(403, { error: "blocked" });
 *     ctx.request.headers.set("x-greeting", ctx.config.greeting);
 *   },
 *   onResponse(ctx) { ctx.response.headers.set("x-plugin", "hello"); },
 * });
 */

/** The hooks, in the order a request meets them. The host, the docs and the tests read this list. */
export const PHASES = ["onRequest", "onResponse", "onLog"] as const;
export type Phase = (typeof PHASES)[number];

/** The SDK version; a plugin package states the range of it that it supports. */
export const SDK_VERSION = "1.0.0";

/**
 * Case-insensitive header access. Names are matched without regard to case. A name a plugin
 * writes must be a token and a value may hold visible characters, Latin-1, spaces and tabs only,
 * no control character (RFC 9110 §5.5); otherwise the request fails as a plugin error naming the
 * header.
 * @example ctx.request.headers.set("x-user", ctx.consumer ?? "anonymous");
 */
export interface Headers {
  /** The value, several values joined with ", ", or undefined. */
  get(name: string): string | undefined;
  /** Replaces every value of `name`. */
  set(name: string, value: string): void;
  /** Adds a value, keeping existing ones. */
  append(name: string, value: string): void;
  delete(name: string): void;
  has(name: string): boolean;
  /** Every [name, value] pair, in order. */
  entries(): [string, string][];
}

/** The client's request as the upstream will receive it. */
export interface Request {
  readonly method: string;
  /**
   * The canonical path (normalised; before stripPrefix). Writable in `onRequest`: the upstream then
   * receives this path.
   * @example ctx.request.path = "/v2" + ctx.request.path;
   */
  path: string;
  /** The raw query string including "?", or "". */
  readonly query: string;
  readonly headers: Headers;
}

/** The response: from the upstream, or made by `respond`. */
export interface Response {
  /** Writable in `onResponse`: a final status, an integer 200-599. */
  status: number;
  /**
   * In `onResponse`: the response's headers. In `onRequest` there is no response yet: headers set
   * or deleted here are applied to the response when it comes (the upstream's or a local one),
   * before any onResponse hook. A plugin that only adds response headers needs no onResponse hook,
   * which saves it one isolate crossing per request.
   * @example onRequest(ctx) { ctx.response.headers.set("x-served-by", "weir"); }
   */
  readonly headers: Headers;
}

/** Durations of a finished request, in milliseconds. Available in `onLog`. */
export interface Timing {
  /** From the request's arrival to the end of the response. */
  total: number;
  /** Time spent waiting for and streaming from the upstream (0 for local replies). */
  upstream: number;
}

/**
 * Key-value storage with TTL; needs `permissions: { store: true }`. In-process by default (with
 * `workers`, in the primary, shared by every worker), shared by every worker and instance when the
 * config sets `store.redis`. Keys are namespaced per
 * plugin. Values are strings.
 * @example const n = await ctx.store.incr("hits:" + ctx.client.ip, 1, { ttlMs: 60_000 });
 */
export interface Store {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, options?: { ttlMs?: number }): Promise<void>;
  /** Adds `by` (default 1) and returns the new value; the TTL is set when the key is created. */
  incr(key: string, by?: number, options?: { ttlMs?: number }): Promise<number>;
  delete(key: string): Promise<void>;
}

/** What `ctx.fetch` returns: status, headers and the whole body as text. */
export interface FetchResult {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * HTTP to the origins listed in `permissions.fetch` only; time and size limited.
 * @example const r = await ctx.fetch("https://auth.example.com/check", { method: "POST", body: "{}" });
 */
export type Fetch = (url: string, init?: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number }) => Promise<FetchResult>;

/** JWT verification done by the host (jose); needs `permissions: { jwt: true }`. */
export interface Jwt {
  /**
   * Verifies a compact JWS and returns its claims, or throws with a reason.
   * Exactly one of `secret`, `publicKey` (PEM) or `jwksUri` is needed.
   * @example const claims = await ctx.jwt.verify(token, { jwksUri: "https://id.example.com/jwks.json", issuer: "https://id.example.com" });
   */
  verify(token: string, options: JwtVerifyOptions): Promise<Record<string, unknown>>;
}

export interface JwtVerifyOptions {
  secret?: string;
  publicKey?: string;
  jwksUri?: string;
  issuer?: string | string[];
  audience?: string | string[];
  algorithms?: string[];
  /** Seconds of clock skew accepted on exp/nbf. */
  clockTolerance?: number;
}

/** What `ctx.rateLimit` decided for one request. */
export interface RateLimitResult {
  allowed: boolean;
  limit: number;
  /** Requests still allowed right now, after this one. */
  remaining: number;
  /** Milliseconds until the quota is whole again (for `RateLimit-Reset`). */
  resetMs: number;
  /** Milliseconds until a refused request may be retried (for `Retry-After`); 0 when allowed. */
  retryAfterMs: number;
  /** Set when the shared store failed: `allowed` is then the `onStoreError` policy, not a count. */
  storeError?: string;
}

export interface RateLimitOptions {
  /** Requests allowed per window (also the largest burst). */
  limit: number;
  windowMs: number;
  /** When the shared store (Redis) is down: "open" (default) allows, "closed" refuses. */
  onStoreError?: "open" | "closed";
}

/**
 * Counts one request against `key` with GCRA, done by the host; needs `permissions: { store: true }`.
 * Answers a Promise: in-process the host counts at once and the answer comes back in the next
 * crossing; with `store.redis` it is one atomic Redis script, shared by every instance, that settles
 * within ~100 ms even when Redis is down. Keys are namespaced per plugin. (The type also allows a
 * plain result, so that code written as below keeps working whichever the host gives.)
 * @example
 * const r = ctx.rateLimit("ip:" + ctx.client.ip, { limit: 100, windowMs: 60_000 });
 * const d = r instanceof Promise ? await r : r;
 * if (!d.allowed) return ctx.respond(429, { error: "too many requests" }, { "retry-after": String(Math.ceil(d.retryAfterMs / 1000)) });
 */
export type RateLimit = (key: string, options: RateLimitOptions) => RateLimitResult | Promise<RateLimitResult>;

/**
 * Counters and histograms exported on the admin `/metrics` as `weir_<plugin>_<name>`. Updates
 * travel back with the hook's result (no extra crossing); no permission
 * needed, but at most 5,000 label combinations per plugin (more are dropped and counted). Best
 * called from `onLog`, off the request path.
 * @example ctx.metrics.observe("request_duration_seconds", ctx.timing.total / 1000, { route: ctx.route.name });
 */
export interface Metrics {
  /** Adds `by` (default 1, >= 0) to a counter. */
  increment(name: string, by?: number, labels?: Record<string, string>): void;
  /** Records one value in a histogram (buckets from 1 ms to 10 s, for durations in seconds). */
  observe(name: string, value: number, labels?: Record<string, string>): void;
}

export interface Log {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** The per-request context every hook receives. */
export interface Context<Config = Record<string, unknown>> {
  readonly request: Request;
  /**
   * The response: in `onResponse` and `onLog`. In `onRequest`, its headers collect changes to apply
   * to the response when it comes (see Response.headers).
   */
  readonly response: Response;
  /**
   * Answers the request here instead of (or, in onResponse, in place of) the upstream's answer.
   * `status` is a final one (200-599). A string body is sent as it is; anything else as JSON.
   * Only in `onRequest` and `onResponse`.
   * @example return ctx.respond(401, { error: "missing key" }, { "www-authenticate": "Key" });
   */
  respond(status: number, body?: unknown, headers?: Record<string, string>): void;
  /** This route entry's `config:`, validated against `configSchema`. */
  readonly config: Config;
  /** Per-request values shared by every plugin of the chain (JSON-serialisable). */
  readonly vars: Record<string, unknown>;
  readonly route: { readonly name: string; readonly params: Readonly<Record<string, string>> };
  readonly client: { readonly ip: string };
  /** The authenticated consumer, set by an auth plugin; null when anonymous. */
  consumer: string | null;
  readonly requestId: string;
  readonly log: Log;
  /** Needs `permissions.store`. */
  readonly store: Store;
  /** Needs `permissions.fetch` (a list of allowed origins). */
  readonly fetch: Fetch;
  /** Needs `permissions.jwt`. */
  readonly jwt: Jwt;
  /** Needs `permissions.store`. */
  readonly rateLimit: RateLimit;
  readonly metrics: Metrics;
  /** In `onLog`. */
  readonly timing: Timing;
}

/** What a plugin asks the host for. The route entry's `permissions:` must grant it. */
export interface Permissions {
  store?: boolean;
  /** Origins `ctx.fetch` may reach, e.g. ["https://auth.example.com"]. */
  fetch?: string[];
  jwt?: boolean;
  /**
   * WebAssembly (and SharedArrayBuffer, Atomics). Without it the plugin's isolate has neither.
   * With it, every WebAssembly memory must declare a maximum, and the maxima together must fit in
   * the entry's `limits.memoryMb`.
   */
  wasm?: boolean;
}

/** A hook: may return nothing, or a promise when it awaits the store, fetch or jwt. */
export type Hook<Config> = (ctx: Context<Config>) => void | Promise<void>;

/** A JSON Schema (draft-07 subset as ajv reads it) for the plugin's `config:`. */
export type JsonSchema = Record<string, unknown>;

export interface PluginDefinition<Config = Record<string, unknown>> {
  /** Lower-case letters, digits and dashes. */
  name: string;
  /** Semantic version, e.g. "1.0.0". */
  version: string;
  /** Validates each route entry's `config:` at `weir validate`, start and reload. */
  configSchema?: JsonSchema;
  permissions?: Permissions;
  /** Before the upstream is contacted; `respond` here stops the chain and the upstream call. */
  onRequest?: Hook<Config>;
  /** When the response headers are known (upstream or local); may change status and headers. */
  onResponse?: Hook<Config>;
  /** After the response was sent; never delays it. Runs in batches, off the request path. */
  onLog?: Hook<Config>;
}

/**
 * Declares a plugin. It only returns its argument; its value is the types it gives your hooks.
 * @example export default definePlugin({ name: "noop", version: "1.0.0", onRequest() {} });
 */
export function definePlugin<Config = Record<string, unknown>>(plugin: PluginDefinition<Config>): PluginDefinition<Config> {
  return plugin;
}
