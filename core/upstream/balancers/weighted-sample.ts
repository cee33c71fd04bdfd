/**
 * Weighted random choice over a generation's targets, shared by `random` and `p2c-ewma`.
 * Built once per generation (prefix sums of the weights); a draw is one Math.random and a binary
 * search. Unavailable targets are handled by rejection (redraw a few times), then by one weighted
 * scan over the available ones, so the choice stays proportional to weight among those left.
 */
import type { Target } from "../target.js";

/** Redraws before falling back to a scan; with half the targets down, 4 misses in a row is 1/16. */
const REDRAWS = 4;

export class WeightedSampler {
  private readonly prefix: Float64Array;
  private readonly total: number;
  private readonly uniform: boolean;

  constructor(private readonly targets: readonly Target[]) {
    this.prefix = new Float64Array(targets.length);
    let sum = 0;
    let uniform = true;
    for (let i = 0; i < targets.length; i++) {
      const w = targets[i]!.weight;
      if (w !== targets[0]!.weight) uniform = false;
      sum += w;
      this.prefix[i] = sum;
    }
    this.total = sum;
    this.uniform = uniform;
  }

  /** One index drawn with probability weight / total, ignoring availability. */
  drawIndex(): number {
    const n = this.targets.length;
    if (this.uniform) return Math.floor(Math.random() * n);
    const x = Math.random() * this.total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.prefix[mid]! > x) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }

  /** An available target other than `exclude`, drawn by weight; null when there is none. */
  draw(now: number, exclude: Target | null | undefined): Target | null {
    const ts = this.targets;
    if (ts.length === 0) return null;
    for (let i = 0; i < REDRAWS; i++) {
      const t = ts[this.drawIndex()]!;
      if (t !== exclude && t.available(now)) return t;
    }
    return weightedScan(ts, now, exclude);
  }
}

/**
 * One pass of weighted reservoir sampling over the available targets (each kept with probability
 * weight / weight-so-far), so the result is proportional to weight without an allocation.
 */
export function weightedScan(ts: readonly Target[], now: number, exclude: Target | null | undefined): Target | null {
  let chosen: Target | null = null;
  let sum = 0;
  for (let i = 0; i < ts.length; i++) {
    const t = ts[i]!;
    if (t === exclude || !t.available(now)) continue;
    sum += t.weight;
    if (Math.random() * sum < t.weight) chosen = t;
  }
  return chosen;
}
