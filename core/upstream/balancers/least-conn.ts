/**
 * `least-conn`: the target with the fewest in-flight requests per unit of weight (nginx
 * least_conn). Scores are compared by cross-multiplication (a.inflight * b.weight) to avoid a
 * division per target. Ties, which are the rule at low load, are broken by a weighted random
 * choice, so sequential traffic is spread in proportion to weight instead of always going to
 * the first target of the list.
 */
import type { Balancer, BalancerFactory } from "./balancer.js";
import type { Target } from "../target.js";

export class LeastConnBalancer implements Balancer {
  constructor(private readonly targets: readonly Target[]) {}

  pick(_ctx: unknown, exclude?: Target | null): Target | null {
    const now = Date.now();
    const ts = this.targets;
    let best: Target | null = null;
    let tieWeight = 0;
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i]!;
      if (t === exclude || !t.available(now)) continue;
      if (best === null) { best = t; tieWeight = t.weight; continue; }
      const lhs = t.inflight * best.weight;
      const rhs = best.inflight * t.weight;
      if (lhs < rhs) { best = t; tieWeight = t.weight; }
      else if (lhs === rhs) {
        tieWeight += t.weight;
        if (Math.random() * tieWeight < t.weight) best = t;
      }
    }
    return best;
  }
}

export const leastConn: BalancerFactory = (targets) => new LeastConnBalancer(targets);
