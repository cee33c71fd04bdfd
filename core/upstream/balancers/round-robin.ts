/**
 * Smooth weighted round-robin (the nginx algorithm): each pick adds every target's weight to its
 * current score, takes the highest, and subtracts the total from the winner. Weights 5/1/1 give
 * a a b a c a a, never a burst of five to one target.
 */
import type { Balancer, BalancerFactory } from "./balancer.js";
import type { Target } from "../target.js";

export class RoundRobinBalancer implements Balancer {
  private readonly current: Float64Array;
  constructor(private readonly targets: readonly Target[]) {
    this.current = new Float64Array(targets.length);
  }

  pick(_ctx: unknown, exclude?: Target | null): Target | null {
    const now = Date.now();
    const ts = this.targets;
    let best = -1;
    let total = 0;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i]!;
      if (!t.available(now) || t === exclude) continue;
      this.current[i]! += t.weight;
      total += t.weight;
      if (best < 0 || this.current[i]! > this.current[best]!) best = i;
    }
    if (best < 0) return null;
    this.current[best]! -= total;
    return ts[best]!;
  }
}

export const roundRobin: BalancerFactory = (targets) => new RoundRobinBalancer(targets);
