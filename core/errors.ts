/**
 * The one catalogue of Weir's error codes. Every error that reaches a user (a CLI line, a JSON body,
 * a log line) carries one of these stable codes; messages say what to do about it.
 * Errors that cross a process or isolate boundary are data, so callers brand by `code`, never by
 * `instanceof`.
 */
export const ErrorCodes = {
  CONFIG_READ: "WEIR_ERR_CONFIG_READ",
  CONFIG_PARSE: "WEIR_ERR_CONFIG_PARSE",
  CONFIG_INVALID: "WEIR_ERR_CONFIG_INVALID",
  NO_ROUTE: "WEIR_ERR_NO_ROUTE",
  BAD_REQUEST: "WEIR_ERR_BAD_REQUEST",
  METHOD_NOT_ALLOWED: "WEIR_ERR_METHOD_NOT_ALLOWED",
  /** An Expect other than 100-continue (RFC 9110 §10.1.1). */
  EXPECTATION_FAILED: "WEIR_ERR_EXPECTATION_FAILED",
  BODY_TOO_LARGE: "WEIR_ERR_BODY_TOO_LARGE",
  HEADERS_TOO_LARGE: "WEIR_ERR_HEADERS_TOO_LARGE",
  REQUEST_TIMEOUT: "WEIR_ERR_REQUEST_TIMEOUT",
  PLUGIN_FAILED: "WEIR_ERR_PLUGIN_FAILED",
  /** The plugin's hook ran past limits.timeoutMs and was stopped. */
  PLUGIN_TIMEOUT: "WEIR_ERR_PLUGIN_TIMEOUT",
  /** The plugin's hook ran past limits.timeoutMs and V8 could not stop it: its isolate was given up. */
  PLUGIN_STUCK: "WEIR_ERR_PLUGIN_STUCK",
  /** The plugin went over limits.memoryMb; its isolate was replaced. */
  PLUGIN_MEMORY: "WEIR_ERR_PLUGIN_MEMORY",
  /** An async hook did not finish within limits.asyncTimeoutMs. */
  PLUGIN_ASYNC_TIMEOUT: "WEIR_ERR_PLUGIN_ASYNC_TIMEOUT",
  /** V8 gave up on the plugin's isolate (or it is being rebuilt after that). */
  PLUGIN_ISOLATE_LOST: "WEIR_ERR_PLUGIN_ISOLATE_LOST",
  /** The plugin failed repeatedly and is skipped for a cooldown (its entry's onError applies). */
  PLUGIN_DEGRADED: "WEIR_ERR_PLUGIN_DEGRADED",
  /** The plugin set a header Weir may not write: a name that is not a token, a value with a control character, too many bytes. */
  PLUGIN_INVALID_HEADER: "WEIR_ERR_PLUGIN_INVALID_HEADER",
  /** The plugin handed back something else Weir cannot use: a status, a path, a malformed result. */
  PLUGIN_INVALID_RESULT: "WEIR_ERR_PLUGIN_INVALID_RESULT",
  /** A ctx.metrics write was dropped: an invalid name or label, a name that is taken, or past limits.maxMetricSeries. */
  PLUGIN_METRIC_DROPPED: "WEIR_ERR_PLUGIN_METRIC_DROPPED",
  /** This version of the plugin crashed its isolate repeatedly and is held back. */
  PLUGIN_QUARANTINED: "WEIR_ERR_PLUGIN_QUARANTINED",
  /** The plugin's top-level code ran past limits.loadTimeoutMs while it loaded. */
  PLUGIN_LOAD_TIMEOUT: "WEIR_ERR_PLUGIN_LOAD_TIMEOUT",
  /** The plugin's source does not compile (esbuild's message, at its file, line and column). */
  PLUGIN_COMPILE: "WEIR_ERR_PLUGIN_COMPILE",
  UPSTREAM_UNREACHABLE: "WEIR_ERR_UPSTREAM_UNREACHABLE",
  UPSTREAM_RESET: "WEIR_ERR_UPSTREAM_RESET",
  UPSTREAM_BAD_RESPONSE: "WEIR_ERR_UPSTREAM_BAD_RESPONSE",
  UPSTREAM_TIMEOUT: "WEIR_ERR_UPSTREAM_TIMEOUT",
  NO_HEALTHY_TARGET: "WEIR_ERR_NO_HEALTHY_TARGET",
  UPSTREAM_OVERLOADED: "WEIR_ERR_UPSTREAM_OVERLOADED",
  SHUTTING_DOWN: "WEIR_ERR_SHUTTING_DOWN",
  LISTEN_FAILED: "WEIR_ERR_LISTEN_FAILED",
  UNAUTHORIZED: "WEIR_ERR_UNAUTHORIZED",
  NOT_FOUND: "WEIR_ERR_NOT_FOUND",
  STORE_UNAVAILABLE: "WEIR_ERR_STORE_UNAVAILABLE",
  /** Weir itself failed while handling a request (a bug): answered 500, logged with its stack. */
  INTERNAL: "WEIR_ERR_INTERNAL",
  /** No isolated-vm build loads on this Node, so no plugin can run. */
  SANDBOX_UNAVAILABLE: "WEIR_ERR_SANDBOX_UNAVAILABLE",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/** An error with a stable code, and optionally the HTTP status Weir answers with for it. */
export class WeirError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message: string, status = 500, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "WeirError";
    this.code = code;
    this.status = status;
  }
}

/** One problem found in a config file, reported as `FILE: path.to.key: message`. */
export interface ConfigProblem {
  file: string;
  path: string;
  message: string;
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.file}: ${p.path || "(root)"}: ${p.message}`;
}

/** Thrown when a config cannot be used; `problems` lists every issue found, not just the first. */
export class ConfigError extends WeirError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super(ErrorCodes.CONFIG_INVALID, problems.map(formatProblem).join("\n"), 400);
    this.name = "ConfigError";
    this.problems = problems;
  }
}
