/**
 * `p2c-ewma`: power of two choices on peak-EWMA latency x (in-flight + 1), the latency-aware
 * balancer of Finagle and Linkerd. Two targets are drawn by weight and the cheaper one wins, so a
 * slow or overloaded target loses nearly every comparison it is in, at the cost of two draws
 * instead of a scan of every target. Costs that are about equal go to the first draw, which keeps
 * traffic over equally fast targets proportional to weight.
 */
import type { Balancer, BalancerFactory } from "./balancer.js";
import type { Target } from "../target.js";
import { WeightedSampler } from "./weighted-sample.js";

/** Added to every estimate (ms) so that in-flight counts still matter before any latency is known. */
const FLOOR_MS = 0.1;
/**
 * Costs within 20% count as equal: equally fast backends then share traffic by weight, instead of
 * measurement noise sending nearly everything to whichever looked a little faster last.
 */
const CLEARLY_CHEAPER = 0.8;
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
    // The second draw must be clearly cheaper to win; otherwise the first, drawn by weight, does.
    return cb < ca * CLEARLY_CHEAPER ? b : a;
  }
}

export const p2cEwma: BalancerFactory = (targets) => new P2cEwmaBalancer(targets);
