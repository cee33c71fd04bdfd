/**
 * Passive outlier detection (`upstreams.NAME.outlier`), from the outcomes of live requests:
 * `consecutiveFailures` failures in a row (connect error, reset, timeout or a 5xx answer) eject a
 * target for `ejectFor`; a success resets the count. A target ejected again soon after coming
 * back stays out longer each time (ejectFor x times ejected, at most 10 x ejectFor), as Envoy
 * does, so a flapping backend does not take a full burst of traffic every ejectFor.
 * `maxEjectedPercent` bounds how much of the upstream may be out at once: a bad deploy that
 * fails every target must not turn into "eject everything" on a signal that may be ours.
 *
 * The counters live on the Target (OutlierState), so they survive a reload; the policy is per
 * generation.
 */
import type { Logger } from "../log/logger.js";
import type { Target } from "./target.js";

/** Per-target counters, kept across generations. */
export class OutlierState {
  /** Failures in a row since the last success. */
  failures = 0;
  /** Ejections in a row; decays to 0 after a calm period as long as the last ejection. */
  ejections = 0;
  /** Length (ms) of the last ejection. */
  lastEjectMs = 0;
}

export interface OutlierPolicy {
  consecutiveFailures: number;
  ejectForMs: number;
  maxEjectedPercent: number;
}

export const OUTLIER_DEFAULTS = { consecutiveFailures: 5, ejectForMs: 30_000, maxEjectedPercent: 50 } as const;

/** The longest ejection, as a multiple of ejectFor. */
const MAX_BACKOFF = 10;

export class OutlierDetector {
  private readonly maxEjected: number;

  constructor(readonly policy: OutlierPolicy, private readonly targets: readonly Target[], private readonly log?: Logger) {
    // Envoy's rule: the percentage rounds down, but one target may always be ejected (else an
    // upstream of one or two targets could never eject anything) unless the percentage is 0.
    const p = policy.maxEjectedPercent;
    this.maxEjected = p === 0 ? 0 : Math.max(1, Math.floor((targets.length * p) / 100));
  }

  success(t: Target): void {
    t.outlier.failures = 0;
  }

  /** Records a failure; returns true when it ejected the target. */
  failure(t: Target, now: number): boolean {
    if (t.ejectedUntil > now) return false; // requests picked before the ejection, still landing
    const s = t.outlier;
    if (++s.failures < this.policy.consecutiveFailures) return false;
    s.failures = 0;
    if (this.ejectedCount(now) >= this.maxEjected) return false;
    // The end of the previous ejection is ejectedUntil; a calm period as long resets the backoff.
    if (now - t.ejectedUntil > s.lastEjectMs) s.ejections = 0;
    s.ejections = Math.min(s.ejections + 1, MAX_BACKOFF);
    s.lastEjectMs = this.policy.ejectForMs * s.ejections;
    t.ejectedUntil = now + s.lastEjectMs;
    this.log?.warn({ upstream: t.upstream, target: t.url, ejectForMs: s.lastEjectMs, times: s.ejections }, "target ejected after consecutive failures");
    return true;
  }

  private ejectedCount(now: number): number {
    let n = 0;
    for (const t of this.targets) if (t.ejectedUntil > now) n++;
    return n;
  }
}
