/**
 * The running health checkers of a Weir process, one per Target. `sync` is called whenever the
 * set of live generations changes (start, reload, a retired generation drained): every target
 * of a live generation whose upstream has `healthCheck` gets a checker, with the settings of the
 * newest generation that names it; a target no live generation uses loses its checker. A target
 * whose upstream no longer has health checks is marked healthy again: without checks nothing
 * would ever bring it back.
 */
import type { Generation } from "../../config/generation.js";
import type { Logger } from "../../log/logger.js";
import type { Target } from "../target.js";
import { HealthChecker, type HealthCheckOptions } from "./active.js";

export class HealthCheckers {
  private readonly running = new Map<Target, HealthChecker>();

  constructor(private readonly log: Logger) {}

  /** `generations`: every live generation, newest first. */
  sync(generations: readonly Generation[]): void {
    const wanted = new Map<Target, HealthCheckOptions | null>();
    for (const gen of generations) {
      for (const u of gen.upstreams.values()) {
        for (const t of u.targets) if (!wanted.has(t)) wanted.set(t, u.healthCheck);
      }
    }
    for (const [t, checker] of this.running) {
      if (wanted.get(t)) continue;
      checker.stop();
      this.running.delete(t);
      if (wanted.has(t) && !t.healthy) {
        t.healthy = true;
        this.log.info({ upstream: t.upstream, target: t.url }, "health checks removed: target is taken as healthy");
      }
    }
    for (const [t, options] of wanted) {
      if (!options) continue;
      const c = this.running.get(t);
      if (c) c.update(options);
      else {
        const checker = new HealthChecker(t, options, this.log);
        this.running.set(t, checker);
        checker.start();
      }
    }
  }

  /** The checker of a target, if it has one. */
  get(t: Target): HealthChecker | undefined {
    return this.running.get(t);
  }

  stopAll(): void {
    for (const c of this.running.values()) c.stop();
    this.running.clear();
  }
}
