/** An upstream of one generation: its targets (shared across generations), balancer and timeouts. */
import type { Balancer, PickContext } from "./balancers/balancer.js";
import type { CircuitBreaker } from "./circuit-breaker.js";
import type { HealthCheckOptions } from "./health/active.js";
import type { OutlierDetector } from "./outlier.js";
import { DEFAULT_RETRIES, RetryBudget, type RetryPolicy } from "./retry.js";
import type { Target } from "./target.js";

/** The resilience settings of an upstream, compiled from its config (docs/load-balancing.md). */
export interface UpstreamPolicies {
  retries?: RetryPolicy;
  /** Circuit breaker (maxConnections/maxPending); null when neither is set. */
  breaker?: CircuitBreaker | null;
  /** Passive outlier detection; null when `outlier` is not set. */
  outlier?: OutlierDetector | null;
  /** Active health checks, run per target by HealthCheckers; null when `healthCheck` is not set. */
  healthCheck?: HealthCheckOptions | null;
}

export interface UpstreamTimeouts {
  connectMs: number;
  responseMs: number;
  idleMs: number;
}

export class Upstream {
  constructor(
    readonly name: string,
    readonly balance: string,
    readonly targets: readonly Target[],
    readonly balancer: Balancer,
    readonly timeouts: UpstreamTimeouts,
    policies: UpstreamPolicies = {},
  ) {
    this.retries = policies.retries ?? DEFAULT_RETRIES;
    this.budget = new RetryBudget(this.retries.budgetPercent);
    this.breaker = policies.breaker ?? null;
    this.outlier = policies.outlier ?? null;
    this.healthCheck = policies.healthCheck ?? null;
  }

  readonly retries: RetryPolicy;
  /** Active requests and retries of this upstream in this generation. */
  readonly budget: RetryBudget;
  readonly breaker: CircuitBreaker | null;
  readonly outlier: OutlierDetector | null;
  readonly healthCheck: HealthCheckOptions | null;

  pick(ctx: PickContext, exclude?: Target | null): Target | null {
    return this.balancer.pick(ctx, exclude);
  }
}
