/**
 * The balancer contract: one file per algorithm, registered by its config name in index.ts.
 * A balancer is built once per generation for one upstream's target list and must skip targets
 * that are not available (unhealthy or ejected). `pick` is on the request path: no allocation.
 */
import type { Target } from "../target.js";

/** What a balancer may look at to choose; hash balancers read the key from it. */
export interface PickContext {
  /** The request's canonical path. */
  path: string;
  /** The client address Weir trusts. */
  clientIp: string;
  /** Reads a request header by lower-case name. */
  header(name: string): string | undefined;
}

export interface Balancer {
  /** Chooses a target, or null when none is available. `exclude` is a target to avoid (a retry). */
  pick(ctx: PickContext, exclude?: Target | null): Target | null;
}

export type BalancerFactory = (targets: readonly Target[], options: { hashOn?: string }) => Balancer;
