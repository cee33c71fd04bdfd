/**
 * One backend server of an upstream, with the state that must outlive a config generation:
 * its connection pool, health, ejection and in-flight count. TargetRegistry hands the same Target
 * to every generation that names the same upstream and URL.
 */
import { Pool } from "undici";
import { PeakEwma } from "./balancers/peak-ewma.js";
import { OutlierState } from "./outlier.js";

export interface PoolOptions {
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  maxConnections: number | null;
}

export class Target {
  /** Weight from the newest generation that uses this target (1 when not given). */
  weight = 1;
  /** Verdict of active health checks; new targets start healthy. */
  healthy = true;
  /** Passive outlier detection: not picked before this time (ms since epoch). */
  ejectedUntil = 0;
  /** Requests on their way to or from this target right now. */
  inflight = 0;
  /** Latency estimate for p2c-ewma, fed by every exchange's completion. */
  readonly latency = new PeakEwma();
  /** Passive outlier counters (consecutive failures, ejections in a row). */
  readonly outlier = new OutlierState();

  readonly pool: Pool;
  readonly origin: string;
  readonly host: string;

  constructor(readonly upstream: string, readonly url: string, readonly options: PoolOptions) {
    const u = new URL(url);
    this.origin = u.origin;
    this.host = u.host;
    this.pool = new Pool(this.origin, {
      connect: { timeout: options.connectTimeoutMs },
      // Keep-alive: trust the server's Keep-Alive hint, but never hold an idle socket longer than
      // `timeouts.idle`, and by default for less time than common servers' own 5 s idle timeout
      // so that we do not reuse a socket the server is closing.
      keepAliveTimeout: Math.min(4_000, options.idleTimeoutMs),
      keepAliveMaxTimeout: options.idleTimeoutMs,
      connections: options.maxConnections,
      pipelining: 1,
    });
  }

  /** Whether the balancer may pick this target now. */
  available(now: number): boolean {
    return this.healthy && this.ejectedUntil <= now;
  }

  get ejected(): boolean {
    return this.ejectedUntil > Date.now();
  }
}
