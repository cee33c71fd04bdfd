/**
 * Keeps Targets (and their pools and health) alive across config generations: a target with the
 * same upstream name, URL and pool options in the next generation is the same object, so a reload
 * neither drops warm connections nor forgets that a backend is down. Targets no longer named are
 * closed once the generations that still use them have drained.
 */
import { Target, type PoolOptions } from "./target.js";

export class TargetRegistry {
  private readonly targets = new Map<string, Target>();

  static key(upstream: string, url: string, o: PoolOptions): string {
    return `${upstream} ${url} ${o.connectTimeoutMs}/${o.idleTimeoutMs}/${o.maxConnections ?? ""}`;
  }

  /** Whether a target for this upstream, URL and pool options exists (a reload keeps it). */
  has(upstream: string, url: string, options: PoolOptions): boolean {
    return this.targets.has(TargetRegistry.key(upstream, url, options));
  }

  /** The target for this upstream and URL, created if new. */
  acquire(upstream: string, url: string, options: PoolOptions): Target {
    const key = TargetRegistry.key(upstream, url, options);
    let t = this.targets.get(key);
    if (!t) {
      t = new Target(upstream, url, options);
      this.targets.set(key, t);
    }
    return t;
  }

  /** Closes targets that no live generation uses; `inUse` is every target still referenced. */
  async release(inUse: Set<Target>): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [key, t] of this.targets) {
      if (inUse.has(t)) continue;
      this.targets.delete(key);
      closing.push(t.pool.close().catch(() => undefined));
    }
    await Promise.all(closing);
  }

  /** Every target this registry holds. */
  all(): Target[] {
    return [...this.targets.values()];
  }

  async closeAll(): Promise<void> {
    await this.release(new Set());
  }
}
