/** An upstream of one generation: its targets (shared across generations), balancer and timeouts. */
import type { Balancer, PickContext } from "./balancers/balancer.js";
import type { Target } from "./target.js";

export interface UpstreamTimeouts {
  connectMs: number;
  responseMs: number;
  idleMs: number;
}

export class Upstream {
  constructor(
    readonly name: string,
    readonly balance: string,
    readonly targets: readonly Target[],
    readonly balancer: Balancer,
    readonly timeouts: UpstreamTimeouts,
  ) {}

  pick(ctx: PickContext, exclude?: Target | null): Target | null {
    return this.balancer.pick(ctx, exclude);
  }
}
