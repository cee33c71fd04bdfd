/**
 * The config file's schema, as data for the validator and as types for the code.
 * Every object is closed (`additionalProperties: false`) so that a typo is an error, not a no-op.
 * docs/configuration.md describes each key for users (a test checks that every key is there).
 */
import { DURATION_PATTERN, type Duration } from "./duration.js";

export interface TlsConfig { cert: string; key: string }
export interface ListenConfig { port: number; host?: string; tls?: TlsConfig }
export interface AdminConfig { port?: number; host?: string; token?: string }
export interface LimitsConfig {
  /** Largest request head (request line + headers) accepted; larger is 431. Default 16384. */
  maxHeaderBytes?: number;
  /** Largest request body accepted; larger is 413. Default 10 MiB. */
  maxBodyBytes?: number;
  /** Time allowed to receive a whole request (head and body); slower is 408. Default 60s. */
  requestTimeout?: Duration;
  /** Time allowed to receive the request head; slower is 408. Default 10s. */
  headersTimeout?: Duration;
  /** How long an idle client keep-alive connection is kept open. Default 5s. */
  keepAliveTimeout?: Duration;
}
export type TargetConfig = string | { url: string; weight?: number };
export interface HealthCheckConfig {
  path?: string; interval?: Duration; timeout?: Duration; healthyAfter?: number; unhealthyAfter?: number;
  /** Whether a target new to Weir takes traffic before its first passing checks. Default true. */
  startHealthy?: boolean;
}
export interface OutlierConfig { consecutiveFailures?: number; ejectFor?: Duration; maxEjectedPercent?: number }
export interface RetriesConfig { attempts?: number; budgetPercent?: number }
export interface TimeoutsConfig { connect?: Duration; response?: Duration; idle?: Duration }
export type BalanceName = "round-robin" | "least-conn" | "p2c-ewma" | "hash" | "random";
export interface UpstreamConfig {
  targets: TargetConfig[];
  balance?: BalanceName;
  hashOn?: string;
  healthCheck?: HealthCheckConfig;
  outlier?: OutlierConfig;
  retries?: RetriesConfig;
  timeouts?: TimeoutsConfig;
  maxConnections?: number;
  maxPending?: number;
}
export interface PluginEntryConfig {
  use: string;
  /** For a .weirpkg: the version (or semver range) the package must have; refuses a replayed old one. */
  version?: string;
  config?: Record<string, unknown>;
  onError?: "closed" | "open";
  /** memoryMb: V8 heap limit of the isolate (default 32); timeoutMs: time limit of one synchronous hook run, measured as elapsed time (default 50); asyncTimeoutMs: wall time of an async hook (default 5000); loadTimeoutMs: time limit of the plugin's top-level code (default 2000); maxMetricSeries: ctx.metrics series the entry may make (default 1000). */
  limits?: { memoryMb?: number; timeoutMs?: number; asyncTimeoutMs?: number; loadTimeoutMs?: number; maxMetricSeries?: number };
  permissions?: { store?: boolean; fetch?: string[]; jwt?: boolean; wasm?: boolean };
}
export interface RouteMatchConfig { path?: string; host?: string | string[]; methods?: string[]; headers?: Record<string, string> }
export interface RouteConfig {
  name?: string;
  match?: RouteMatchConfig;
  upstream: string;
  stripPrefix?: boolean;
  /** Forward the client's Host header instead of the target's. Default false. */
  preserveHost?: boolean;
  timeouts?: TimeoutsConfig;
  plugins?: PluginEntryConfig[];
}
export interface WeirConfig {
  listen?: ListenConfig | ListenConfig[];
  /** The admin server; `false` turns it off. Default 127.0.0.1:9901. */
  admin?: AdminConfig | false;
  /** redis: state shared by every worker and instance; maxEntries/maxBytes bound the in-process store (used without redis). */
  store?: { redis?: string; maxEntries?: number; maxBytes?: number };
  trustedProxies?: string[];
  limits?: LimitsConfig;
  /** Grace period for in-flight requests on SIGTERM/SIGINT. Default 10s. */
  shutdownTimeout?: Duration;
  workers?: "auto" | number;
  log?: { level?: "trace" | "debug" | "info" | "warn" | "error" | "silent"; access?: boolean };
  upstreams?: Record<string, UpstreamConfig>;
  routes?: RouteConfig[];
  plugins?: PluginEntryConfig[];
  trustedPublishers?: Record<string, string>;
  requireSigned?: boolean;
  /** Largest .weirpkg accepted, in bytes. Default 5 MiB. */
  maxPackageBytes?: number;
}

const DURATION_TEXT = 'a duration such as "250ms", "2s", "1m" or a number of milliseconds';
const duration = { description: DURATION_TEXT, anyOf: [{ type: "string", pattern: DURATION_PATTERN }, { type: "number", minimum: 0 }] };
const positiveDuration = { description: DURATION_TEXT + " (more than 0)", anyOf: [{ type: "string", pattern: DURATION_PATTERN }, { type: "number", exclusiveMinimum: 0 }] };
const port = { type: "integer", minimum: 0, maximum: 65535 };
const closed = (properties: Record<string, unknown>, required: string[] = []) =>
  ({ type: "object", properties, required, additionalProperties: false });

const listen = closed({ port, host: { type: "string", minLength: 1 }, tls: closed({ cert: { type: "string", minLength: 1 }, key: { type: "string", minLength: 1 } }, ["cert", "key"]) }, ["port"]);
const timeouts = closed({ connect: positiveDuration, response: positiveDuration, idle: positiveDuration });
export const BALANCERS: BalanceName[] = ["round-robin", "least-conn", "p2c-ewma", "hash", "random"];

const pluginEntry = closed({
  use: { type: "string", minLength: 1 },
  version: { type: "string", minLength: 1 },
  config: { type: "object" },
  onError: { enum: ["closed", "open"] },
  limits: closed({ memoryMb: { type: "integer", minimum: 8, maximum: 4096 }, timeoutMs: { type: "integer", minimum: 1, maximum: 60000 }, asyncTimeoutMs: { type: "integer", minimum: 1, maximum: 600000 }, loadTimeoutMs: { type: "integer", minimum: 1, maximum: 60000 }, maxMetricSeries: { type: "integer", minimum: 0, maximum: 1000000 } }),
  permissions: closed({ store: { type: "boolean" }, fetch: { type: "array", items: { type: "string", minLength: 1 } }, jwt: { type: "boolean" }, wasm: { type: "boolean" } }),
}, ["use"]);

export const configSchema = closed({
  listen: { description: "a listener {port, host?, tls?} or a list of them", anyOf: [listen, { type: "array", items: listen, minItems: 1 }] },
  admin: { description: "{port?, host?, token?} or false to turn the admin server off", anyOf: [{ const: false }, closed({ port, host: { type: "string", minLength: 1 }, token: { type: "string" } })] },
  store: closed({ redis: { type: "string", pattern: "^rediss?://" }, maxEntries: { type: "integer", minimum: 1 }, maxBytes: { type: "integer", minimum: 1024 } }),
  trustedProxies: { type: "array", items: { type: "string", minLength: 1 } },
  limits: closed({
    maxHeaderBytes: { type: "integer", minimum: 1024 },
    maxBodyBytes: { type: "integer", minimum: 0 },
    requestTimeout: positiveDuration,
    headersTimeout: positiveDuration,
    keepAliveTimeout: duration,
  }),
  shutdownTimeout: duration,
  workers: { description: "\"auto\" or a number of worker processes (1-256)", anyOf: [{ const: "auto" }, { type: "integer", minimum: 1, maximum: 256 }] },
  log: closed({ level: { enum: ["trace", "debug", "info", "warn", "error", "silent"] }, access: { type: "boolean" } }),
  upstreams: {
    type: "object",
    propertyNames: { pattern: "^[A-Za-z0-9_.-]+$" },
    additionalProperties: closed({
      targets: { type: "array", minItems: 1, items: { description: "a target URL, or {url, weight} with weight 1-1000", anyOf: [{ type: "string", minLength: 1 }, closed({ url: { type: "string", minLength: 1 }, weight: { type: "integer", minimum: 1, maximum: 1000 } }, ["url"])] } },
      balance: { enum: BALANCERS },
      hashOn: { type: "string", pattern: "^(header:[A-Za-z0-9!#$%&'*+.^_`|~-]+|cookie:[^=;, ]+|ip|path)$" },
      healthCheck: closed({ path: { type: "string", pattern: "^/" }, interval: positiveDuration, timeout: positiveDuration, healthyAfter: { type: "integer", minimum: 1 }, unhealthyAfter: { type: "integer", minimum: 1 }, startHealthy: { type: "boolean" } }),
      outlier: closed({ consecutiveFailures: { type: "integer", minimum: 1 }, ejectFor: positiveDuration, maxEjectedPercent: { type: "integer", minimum: 0, maximum: 100 } }),
      retries: closed({ attempts: { type: "integer", minimum: 0, maximum: 10 }, budgetPercent: { type: "integer", minimum: 0, maximum: 100 } }),
      timeouts,
      maxConnections: { type: "integer", minimum: 1 },
      maxPending: { type: "integer", minimum: 0 },
    }, ["targets"]),
  },
  routes: {
    type: "array",
    items: closed({
      name: { type: "string", minLength: 1 },
      match: closed({
        path: { type: "string", pattern: "^/" },
        host: { description: "a host name (\"api.example.com\", \"*.example.com\") or a list of them", anyOf: [{ type: "string", minLength: 1 }, { type: "array", items: { type: "string", minLength: 1 }, minItems: 1 }] },
        methods: { type: "array", items: { type: "string", pattern: "^[A-Z]+$" }, minItems: 1 },
        headers: { type: "object", additionalProperties: { type: "string" } },
      }),
      upstream: { type: "string", minLength: 1 },
      stripPrefix: { type: "boolean" },
      preserveHost: { type: "boolean" },
      timeouts,
      plugins: { type: "array", items: pluginEntry },
    }, ["upstream"]),
  },
  plugins: { type: "array", items: pluginEntry },
  trustedPublishers: { type: "object", additionalProperties: { type: "string", minLength: 1 } },
  requireSigned: { type: "boolean" },
  maxPackageBytes: { type: "integer", minimum: 1024 },
});
