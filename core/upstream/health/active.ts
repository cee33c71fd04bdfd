/**
 * Active health checks of one Target (`upstreams.NAME.healthCheck`): an HTTP GET of `path` every
 * `interval`, answered 2xx or 3xx within `timeout` to pass. `unhealthyAfter` failures in a row
 * mark the target unhealthy (the balancers skip it), `healthyAfter` passes in a row bring it back.
 * Each transition is logged once.
 *
 * The checker belongs to the Target, not to a generation, so a reload neither resets the verdict
 * nor restarts the counting (HealthCheckers keeps one per target and updates its settings).
 * Checks use their own connection (an undici Client) so they neither queue behind traffic nor
 * take a slot of `maxConnections`. Each wait is shortened by up to 10% at random so that many
 * Weir processes do not probe a backend in lockstep, and never lengthened, which keeps the
 * detection bound: a dead target is out at most interval x unhealthyAfter (+ timeout) after it died.
 * Timers are unref'd: health checks never keep the process alive.
 */
import { Client } from "undici";
import type { Logger } from "../../log/logger.js";
import type { Target } from "../target.js";

export interface HealthCheckOptions {
  path: string;
  intervalMs: number;
  timeoutMs: number;
  healthyAfter: number;
  unhealthyAfter: number;
}

export const HEALTH_CHECK_DEFAULTS: HealthCheckOptions = { path: "/health", intervalMs: 10_000, timeoutMs: 1_000, healthyAfter: 2, unhealthyAfter: 2 };
const JITTER = 0.1;

export class HealthChecker {
  private client: Client;
  private timer: NodeJS.Timeout | null = null;
  private running = false;
  private passes = 0;
  private failures = 0;
  /** Number of checks done, and the outcome of the last one (for tests and the admin API). */
  checks = 0;
  lastError: string | null = null;

  constructor(readonly target: Target, private options: HealthCheckOptions, private readonly log: Logger) {
    this.client = this.newClient();
  }

  get settings(): HealthCheckOptions {
    return this.options;
  }

  /** Applies a new generation's settings; the counters and the verdict are kept. */
  update(options: HealthCheckOptions): void {
    const o = this.options;
    if (o.path === options.path && o.intervalMs === options.intervalMs && o.timeoutMs === options.timeoutMs &&
        o.healthyAfter === options.healthyAfter && o.unhealthyAfter === options.unhealthyAfter) return;
    const newTimeout = o.timeoutMs !== options.timeoutMs;
    this.options = options;
    if (newTimeout) { void this.client.close().catch(() => undefined); this.client = this.newClient(); }
    if (this.running) { this.clearTimer(); this.schedule(this.jittered(Math.min(options.intervalMs, 100))); }
  }

  /** Starts checking; the first check runs within ~100 ms so a new target's state is known fast. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(this.jittered(Math.min(this.options.intervalMs, 100)));
  }

  stop(): void {
    this.running = false;
    this.clearTimer();
    void this.client.destroy().catch(() => undefined);
  }

  private newClient(): Client {
    return new Client(this.target.origin, {
      connect: { timeout: this.options.timeoutMs },
      headersTimeout: this.options.timeoutMs,
      bodyTimeout: this.options.timeoutMs,
      pipelining: 1,
    });
  }

  private jittered(ms: number): number {
    return ms * (1 - Math.random() * JITTER);
  }

  private schedule(ms: number): void {
    this.timer = setTimeout(() => void this.check(), ms);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async check(): Promise<void> {
    this.timer = null;
    const started = Date.now();
    const { path, timeoutMs } = this.options;
    let error: string | null = null;
    try {
      const res = await this.client.request({
        path,
        method: "GET",
        headers: { host: this.target.host, "user-agent": "weir-health-check" },
        signal: AbortSignal.timeout(timeoutMs),
      });
      await res.body.dump();
      if (res.statusCode < 200 || res.statusCode >= 400) error = `answered ${res.statusCode}`;
    } catch (err) {
      error = (err as Error).name === "TimeoutError" || (err as { code?: string }).code === "UND_ERR_HEADERS_TIMEOUT"
        ? `no answer within ${timeoutMs} ms`
        : ((err as { code?: string }).code ?? (err as Error).message);
    }
    if (!this.running) return;
    this.checks++;
    this.lastError = error;
    this.record(error);
    this.schedule(this.jittered(Math.max(0, this.options.intervalMs - (Date.now() - started))));
  }

  private record(error: string | null): void {
    const t = this.target;
    if (error === null) {
      this.failures = 0;
      this.passes++;
      if (!t.healthy && this.passes >= this.options.healthyAfter) {
        t.healthy = true;
        this.log.info({ upstream: t.upstream, target: t.url, passes: this.passes }, "target is healthy again");
      }
    } else {
      this.passes = 0;
      this.failures++;
      if (t.healthy && this.failures >= this.options.unhealthyAfter) {
        t.healthy = false;
        this.log.warn({ upstream: t.upstream, target: t.url, failures: this.failures, reason: error }, "target is unhealthy");
      }
    }
  }
}
