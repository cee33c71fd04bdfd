/**
 * Retries (`upstreams.NAME.retries`): which failed attempts may be sent again, and the budget
 * that keeps retries from multiplying an outage.
 *
 * What is retried, on another target when there is one:
 * - a connect failure (refused, unreachable, connect timeout): nothing reached the upstream, so
 *   any method may go again, as long as the request body has not been read yet;
 * - a reset, a response timeout, or an answer 500, 502, 503 or 504: only for GET, HEAD and
 *   OPTIONS without a request body (RFC 9110 §9.2.2: idempotent, and nothing to replay), and only
 *   while nothing has been sent to the client. A POST whose bytes went out is never replayed.
 * 500 is in the list because an always-500 backend behind a healthy one is the common case where
 * a second target answers; 501 and 505 are about the request itself and are not retried.
 *
 * The budget (Envoy's retry_budget, Finagle's RetryBudget): at most `budgetPercent` of the
 * upstream's active requests may be retries at any moment, but always at least
 * MIN_CONCURRENT_RETRIES, so a quiet upstream can still retry.
 */
import { isConnectFailure } from "./fault-status.js";

export interface RetryPolicy {
  /** Extra attempts after the first; 0 turns retries off. */
  attempts: number;
  budgetPercent: number;
  /** Only connection failures (refused, reset): no retry on a timeout or a 5xx answer. */
  connectionErrorsOnly?: boolean;
}

export const NO_RETRIES: RetryPolicy = { attempts: 0, budgetPercent: 20 };
/**
 * Without `retries` in the config, one retry on a connection failure only, as nginx's default
 * `proxy_next_upstream error`: a refused connection, or an idempotent request whose kept-alive
 * socket the upstream had just closed (the keep-alive race), goes to another target instead of
 * becoming a 502. Timeouts and 5xx answers are not retried (a retried timeout doubles the wait);
 * `retries: { attempts: 0 }` turns even this off.
 */
export const DEFAULT_RETRIES: RetryPolicy = { attempts: 1, budgetPercent: 20, connectionErrorsOnly: true };
export const RETRY_DEFAULTS = { attempts: 2, budgetPercent: 20 } as const;
export const MIN_CONCURRENT_RETRIES = 3;
export const RETRY_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504]);
const IDEMPOTENT: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Whether an attempt that ended with `status` (an upstream answer) or `error` (no usable answer)
 * may be sent again. `bodyTouched`: the request body was (partly) read, so it cannot be re-sent.
 */
export function retryEligible(method: string, hasBody: boolean, bodyTouched: boolean, status: number, error: unknown, connectionErrorsOnly = false): boolean {
  if (error != null && isConnectFailure(error)) return !hasBody || !bodyTouched;
  if (hasBody || !IDEMPOTENT.has(method)) return false;
  if (error != null) return connectionErrorsOnly ? isConnectionReset(error) : isRetriableError(error);
  return !connectionErrorsOnly && RETRY_STATUSES.has(status);
}

function isConnectionReset(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "UND_ERR_SOCKET" || code === "ECONNRESET" || code === "EPIPE" || code === "UND_ERR_CLOSED";
}

function isRetriableError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "UND_ERR_SOCKET" || code === "ECONNRESET" || code === "EPIPE" || code === "UND_ERR_CLOSED" ||
    code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT" || code === "ETIMEDOUT";
}

/** Concurrent-retry budget of one upstream (per generation). */
export class RetryBudget {
  /** Requests of this upstream in progress. */
  active = 0;
  /** Of those, how many are on a retry now. */
  retrying = 0;

  constructor(readonly percent: number) {}

  /** Takes a retry slot if the budget allows; pair with `release`. */
  tryAcquire(): boolean {
    const limit = Math.max(MIN_CONCURRENT_RETRIES, Math.floor((this.active * this.percent) / 100));
    if (this.retrying >= limit) return false;
    this.retrying++;
    return true;
  }

  release(): void {
    this.retrying--;
  }
}
