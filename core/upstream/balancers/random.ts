/** `random`: each pick is an independent weighted draw among the available targets. */
import type { Balancer, BalancerFactory } from "./balancer.js";
import type { Target } from "../target.js";
import { WeightedSampler } from "./weighted-sample.js";

export class RandomBalancer implements Balancer {
  private readonly sampler: WeightedSampler;
  constructor(targets: readonly Target[]) {
    this.sampler = new WeightedSampler(targets);
  }

  pick(_ctx: unknown, exclude?: Target | null): Target | null {
    return this.sampler.draw(Date.now(), exclude);
  }
}

export const random: BalancerFactory = (targets) => new RandomBalancer(targets);
