/**
 * Peak-EWMA latency of one target, as Finagle and Linkerd use it for power-of-two-choices: a
 * slower observation replaces the average at once (peak), a faster one is blended in with a weight
 * that depends on the time since the last observation (not on the request count, so a busy and an
 * idle target forget at the same speed). The value also decays when it is read, so a target that
 * was slow once and then stopped being picked is tried again after a few `DECAY_MS` instead of
 * being starved forever.
 */

/** Time constant of the average: an observation's weight halves about every 7 s. */
const DECAY_MS = 10_000;

export class PeakEwma {
  /** Latency estimate in milliseconds; 0 until the first observation. */
  private value = 0;
  /** Date.now() of the last observation. */
  private stamp = 0;

  /** Records one exchange's latency (ms) observed at `now` (Date.now()). */
  observe(ms: number, now: number): void {
    if (ms > this.value) {
      this.value = ms;
    } else {
      const w = Math.exp(-(now - this.stamp) / DECAY_MS);
      this.value = this.value * w + ms * (1 - w);
    }
    this.stamp = now;
  }

  /**
   * Records a failed exchange: a target that fails fast must not look fast, or p2c would send it
   * more traffic (the "black hole" of latency-aware balancing). Its estimate at least doubles.
   */
  penalize(ms: number, now: number): void {
    this.observe(Math.max(ms, this.value * 2, FAILURE_FLOOR_MS), now);
  }

  /** The estimate at `now`, decayed since the last observation. */
  cost(now: number): number {
    const age = now - this.stamp;
    return age <= 0 ? this.value : this.value * Math.exp(-age / DECAY_MS);
  }

  /** The raw estimate (ms), for the admin API and tests. */
  get ms(): number {
    return this.value;
  }
}

/** A failure counts as at least this slow (ms). */
const FAILURE_FLOOR_MS = 50;
