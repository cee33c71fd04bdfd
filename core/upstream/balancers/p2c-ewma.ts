/**
 * `p2c-ewma`: power of two choices on peak-EWMA latency x (in-flight + 1), the latency-aware
 * balancer of Finagle and Linkerd. Two targets are drawn by weight and the cheaper one wins, so a
 * slow or overloaded target loses nearly every comparison it is in, at the cost of two draws
 * instead of a scan of every target. Equal costs (no latency measured yet) go to the first draw,
 * which keeps sequential traffic proportional to weight.
 */
import type { Balancer, BalancerFactory } from "./balancer.js";
import type { Target } from "../target.js";
import { WeightedSampler } from "./weighted-sample.js";

/** Added to every estimate (ms) so that in-flight counts still matter before any latency is known. */
const FLOOR_MS = 0.1;
/** Extra draws to find a second target different from the first. */
const REDRAWS = 3;

export class P2cEwmaBalancer implements Balancer {
  private readonly sampler: WeightedSampler;
  constructor(targets: readonly Target[]) {
    this.sampler = new WeightedSampler(targets);
  }

  pick(_ctx: unknown, exclude?: Target | null): Target | null {
    const now = Date.now();
    const a = this.sampler.draw(now, exclude);
    if (a === null) return null;
    let b = this.sampler.draw(now, exclude);
    for (let i = 0; b === a && i < REDRAWS; i++) b = this.sampler.draw(now, exclude);
    if (b === null || b === a) return a;
    const ca = (a.latency.cost(now) + FLOOR_MS) * (a.inflight + 1);
    const cb = (b.latency.cost(now) + FLOOR_MS) * (b.inflight + 1);
    // On a tie the first draw wins: it was drawn by weight, so ties keep traffic proportional.
    return cb < ca ? b : a;
  }
}

export const p2cEwma: BalancerFactory = (targets) => new P2cEwmaBalancer(targets);
