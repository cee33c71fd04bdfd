/**
 * Compiles an upstream's resilience keys (healthCheck, outlier, retries, maxConnections,
 * maxPending) into the policies Upstream holds, with their defaults, and checks the combinations
 * the schema cannot express. Both run at config load; the request path only reads the result.
 */
import { toMs } from "../config/duration.js";
import type { UpstreamConfig } from "../config/schema.js";
import type { Logger } from "../log/logger.js";
import { CircuitBreaker } from "./circuit-breaker.js";
import { HEALTH_CHECK_DEFAULTS, type HealthCheckOptions } from "./health/active.js";
import { OUTLIER_DEFAULTS, OutlierDetector } from "./outlier.js";
import { DEFAULT_RETRIES, RETRY_DEFAULTS } from "./retry.js";
import type { Target } from "./target.js";
import type { UpstreamPolicies, UpstreamTimeouts } from "./upstream.js";

/** Problems with `upstreams.NAME` (`at`) beyond the schema, reported through `add(path, message)`. */
export function checkUpstreamPolicies(u: UpstreamConfig, at: string, add: (path: string, message: string) => void): void {
  if (u.maxPending !== undefined && u.maxConnections === undefined)
    add(`${at}.maxPending`, "only applies with maxConnections (requests wait only when every connection is busy)");
  const hc = u.healthCheck;
  if (hc) {
    const interval = hc.interval !== undefined ? toMs(hc.interval) : HEALTH_CHECK_DEFAULTS.intervalMs;
    const timeout = hc.timeout !== undefined ? toMs(hc.timeout) : Math.min(HEALTH_CHECK_DEFAULTS.timeoutMs, interval);
    if (timeout > interval) add(`${at}.healthCheck.timeout`, `must not be longer than healthCheck.interval (${interval} ms), or checks would overlap`);
  }
  const seen = new Map<string, number>();
  u.targets.forEach((t, i) => {
    const url = typeof t === "string" ? t : t.url;
    let origin: string;
    let u: URL;
    try { u = new URL(url); } catch { return; } // reported as a bad URL elsewhere
    // A URL with credentials, a path or a query is already refused elsewhere: one problem each.
    if (u.username || u.password || (u.pathname !== "/" && u.pathname !== "") || u.search || u.hash) return;
    origin = u.origin;
    const first = seen.get(origin);
    if (first !== undefined) add(`${at}.targets[${i}]`, `"${url}" is already targets[${first}]; use weight to send it more traffic`);
    else seen.set(origin, i);
  });
}

export function compileUpstreamPolicies(u: UpstreamConfig, targets: readonly Target[], timeouts: UpstreamTimeouts, log?: Logger): UpstreamPolicies {
  return {
    healthCheck: u.healthCheck ? healthCheckOptions(u.healthCheck) : null,
    outlier: u.outlier
      ? new OutlierDetector({
          consecutiveFailures: u.outlier.consecutiveFailures ?? OUTLIER_DEFAULTS.consecutiveFailures,
          ejectForMs: u.outlier.ejectFor !== undefined ? toMs(u.outlier.ejectFor) : OUTLIER_DEFAULTS.ejectForMs,
          maxEjectedPercent: u.outlier.maxEjectedPercent ?? OUTLIER_DEFAULTS.maxEjectedPercent,
        }, targets, log)
      : null,
    retries: u.retries
      ? { attempts: u.retries.attempts ?? RETRY_DEFAULTS.attempts, budgetPercent: u.retries.budgetPercent ?? RETRY_DEFAULTS.budgetPercent }
      : DEFAULT_RETRIES,
    // Waiting requests give up after the connect timeout: waiting for a connection is connecting.
    breaker: u.maxConnections !== undefined
      ? new CircuitBreaker(u.maxConnections, u.maxPending ?? u.maxConnections, timeouts.connectMs)
      : null,
  };
}

function healthCheckOptions(hc: NonNullable<UpstreamConfig["healthCheck"]>): HealthCheckOptions {
  const intervalMs = hc.interval !== undefined ? toMs(hc.interval) : HEALTH_CHECK_DEFAULTS.intervalMs;
  return {
    path: hc.path ?? HEALTH_CHECK_DEFAULTS.path,
    intervalMs,
    timeoutMs: hc.timeout !== undefined ? toMs(hc.timeout) : Math.min(HEALTH_CHECK_DEFAULTS.timeoutMs, intervalMs),
    healthyAfter: hc.healthyAfter ?? HEALTH_CHECK_DEFAULTS.healthyAfter,
    unhealthyAfter: hc.unhealthyAfter ?? HEALTH_CHECK_DEFAULTS.unhealthyAfter,
  };
}
